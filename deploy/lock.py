"""One deploy at a time per stack: a lock kept on the swarm itself, as Kamal keeps one.

The lock is a Swarm config named `<stack>_deploy_lock` holding who took it, when, for
which version and why. `docker config create` fails when the name exists, so taking it
is atomic across every client of the swarm: CI's deploy and a person's share it. It is
released on every way out of the deploy (signals included: deploy.cancel turns them
into exceptions); a lock left by a killed client stays until someone releases it with
`python -m deploy lock release`, and is reported with its holder and age meanwhile,
never broken silently.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from deploy import swarm

LOCK_LABEL = "prework.deploy.lock"
POLL_INTERVAL = 2.0


@dataclass(frozen=True)
class Holder:
    """Who holds (or asks for) the lock: actor, version, message, since (ISO UTC)."""

    actor: str
    version: str
    message: str
    since: str

    def describe(self, now: datetime | None = None) -> str:
        """One line: who, for which version, since when and how long ago, and why."""
        now = now or datetime.now(timezone.utc)
        age = int((now - datetime.fromisoformat(self.since)).total_seconds())
        why = f": {self.message}" if self.message else ""
        return (
            f"{self.actor} deploying {self.version} since {self.since} "
            f"({age} s ago){why}"
        )


class LockHeld(Exception):
    """Someone else holds the stack's deploy lock (and waiting did not change it)."""


def utc_now() -> str:
    """The time now, ISO 8601 in UTC to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def default_actor() -> str:
    """The GitHub actor in a workflow, else user@host."""
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"{actor} (GitHub Actions)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def default_message() -> str:
    """The workflow run's address in GitHub Actions, else nothing."""
    run = os.environ.get("GITHUB_RUN_ID")
    if not run:
        return ""
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{run}"


def lock_name(stack: str) -> str:
    """The Swarm config that is the stack's lock."""
    return f"{stack}_deploy_lock"


def current_holder(stack: str) -> Holder | None:
    """Who holds the stack's lock now (None: nobody)."""
    for config in swarm.configs_labelled(LOCK_LABEL, stack):
        if config.name == lock_name(stack):
            try:
                return Holder(**json.loads(config.data))
            except (TypeError, ValueError):
                return Holder("unknown", "unknown", config.data[:80], utc_now())
    return None


def try_acquire(stack: str, holder: Holder) -> Holder | None:
    """Take the lock: None when taken, else whoever holds it."""
    for _ in range(3):
        try:
            swarm.create_config(
                lock_name(stack), {LOCK_LABEL: stack}, json.dumps(asdict(holder))
            )
        except swarm.DockerError as error:
            current = current_holder(stack)
            if current is not None:
                return current
            if "already exists" not in str(error).lower():
                raise  # no lock in the way: the engine's own failure
            continue  # released between the two calls: try again
        return None
    raise LockHeld(f"the deploy lock of {stack} changed hands three times at once")


def acquire(stack: str, holder: Holder, wait: float) -> None:
    """Take the lock, waiting up to `wait` seconds for its holder; else LockHeld."""
    deadline = time.monotonic() + wait
    while True:
        current = try_acquire(stack, holder)
        if current is None:
            return
        if time.monotonic() >= deadline:
            raise LockHeld(
                f"the deploy lock of {stack} is held by {current.describe()}; "
                f"wait with --lock-wait SECONDS, or if its holder is gone: "
                f"python -m deploy lock release --stack {stack}"
            )
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


def release(stack: str) -> Holder | None:
    """Remove the lock; who held it (None: nobody did)."""
    current = current_holder(stack)
    if current is not None:
        swarm.remove_config(lock_name(stack))
    return current


@contextmanager
def held(stack: str, holder: Holder, wait: float) -> Iterator[None]:
    """The lock for the length of a `with` block, released however the block ends."""
    acquire(stack, holder, wait)
    try:
        yield
    finally:
        # Only our own: a lock released by hand may have been taken by another since.
        if current_holder(stack) == holder:
            swarm.remove_config(lock_name(stack))
