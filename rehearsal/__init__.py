"""Rehearse the pipeline on one machine (`python -m rehearsal`, `nox -s rehearse`).

The project's own workflows run under act against a local "GitHub" (a git smart-HTTP
server holding a throwaway origin made from the committed HEAD, and the vendored
actions), a local registry and a local production swarm reached over SSH; three
release cycles, each step asserting what it must see, then one table.
"""
