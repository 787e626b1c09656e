"""End-to-end proof on a real single-node Docker Swarm (`nox -s e2e`)."""
