"""The docs' commands as tests (`nox -s docs`): see tests/docs/plugin.py."""
