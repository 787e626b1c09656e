"""The brief's Swarm commands, and what the e2e runs for each (said at its start).

The brief and docs/SWARM.md give the commands a person types on their own swarm; the
e2e proves the same things on a throwaway engine, so it runs one of them as written and
replaces the others, each for a reason it says rather than hides.
"""

from __future__ import annotations

# (the command as docs/SWARM.md gives it, what the e2e runs instead and why)
SEED_COMMANDS: tuple[tuple[str, str], ...] = (
    (
        "docker swarm init",
        "replaced by `docker swarm init --advertise-addr 127.0.0.1` "
        "(devstack/dockerd.py), only when the engine is in no swarm yet: the e2e's "
        "swarm is reached on loopback, and a bare init refuses a host with several "
        "addresses",
    ),
    (
        "docker build -t prework-flask-app .",
        "replaced by `docker build --network host -t prework-flask-app:VERSION "
        "--build-arg BASE_IMAGE=... --build-arg VERSION=... --build-arg GIT_SHA=...` "
        "(e2e/images.py): two versions and a broken image to roll between, on a Debian "
        "stand-in base (with the host's CA bundle) where no registry answers",
    ),
    (
        "docker secret create NAME -",
        "as written, with the e2e's own names (prework_e2e_*, e2e/stack.py), so that a "
        "real deployment's secrets are never touched",
    ),
    (
        "docker stack deploy -c docker-compose.yml prework_stack",
        "replaced by `python -m deploy`, which runs `docker stack deploy` with "
        "`--with-registry-auth --resolve-image changed` and verifies every replica; "
        "the good deploys add `-c docker-compose.embedded-store.yml`, since no MongoDB "
        "runs here",
    ),
    (
        "docker service logs prework_stack_web -f",
        "replaced by `docker service logs --timestamps --tail 3000` of every service, "
        "kept when a step fails (e2e/stack.py): `-f` would follow forever",
    ),
    (
        "docker service inspect --pretty prework_stack_web",
        "replaced by `docker service inspect` (JSON), which the steps read for specs, "
        "update states and labels: `--pretty` is the same data, for a person",
    ),
)


def say_seed_commands() -> None:
    """Print each of the brief's commands and what this run does for it."""
    print("[e2e] the brief's Swarm commands, and what this run does for each:")
    for command, what in SEED_COMMANDS:
        print(f"  {command}: {what}")
