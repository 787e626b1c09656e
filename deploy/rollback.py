"""Roll back exactly what one deploy changed, and wait until it is back.

A service is "changed" when its spec after `docker stack deploy` differs from the spec
it had before; a re-run of the same deploy changes nothing and so rolls nothing back.
Rolled back means: the spec is the one from before again, and every replica runs it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from deploy import swarm

POLL_INTERVAL = 1.0


class RollbackFailed(Exception):
    """A rollback did not bring a service back to its previous spec in time."""


def changed_services(
    before: Mapping[str, swarm.Snapshot], after: Mapping[str, swarm.Snapshot]
) -> list[str]:
    """Services that existed before and whose spec the deploy changed, sorted."""
    return sorted(
        name
        for name, snapshot in after.items()
        if name in before and snapshot.spec != before[name].spec
    )


def swarm_rolls_back(state: swarm.ServiceState, before: swarm.Snapshot) -> bool:
    """True when Swarm itself rolls back (or rolled back) this deploy's update.

    A rollback state left from an earlier deploy has the old start time and does not
    count: asking for a rollback after Swarm's own would roll forward again.
    """
    fresh = state.update_started != before.update_started
    return fresh and state.update_state in {"rollback_started", "rollback_completed"}


def is_back(service: str, before: swarm.Snapshot) -> bool:
    """The service runs its previous spec again, on every replica, no update pending."""
    if swarm.service_spec(service) != before.spec:
        return False
    state = swarm.service_state(service)
    if state.update_state == "rollback_paused":
        raise RollbackFailed(
            f"the rollback of {service} paused: {state.update_message}"
        )
    return state.converged()


def roll_back(service: str, before: swarm.Snapshot, timeout: float) -> None:
    """Roll `service` back to `before` unless Swarm already does; wait for it."""
    if swarm.service_spec(service) != before.spec and not swarm_rolls_back(
        swarm.service_state(service), before
    ):
        swarm.rollback(service)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_back(service, before):
            return
        time.sleep(POLL_INTERVAL)
    raise RollbackFailed(f"the rollback of {service} did not finish in {timeout:g} s")


def roll_back_all(
    services: list[str], before: Mapping[str, swarm.Snapshot], timeout: float
) -> list[str]:
    """Roll back each service in turn; return one line per failure (empty: all back)."""
    failures = []
    for service in services:
        try:
            roll_back(service, before[service], timeout)
        except (RollbackFailed, swarm.DockerError) as error:
            failures.append(str(error))
    return failures
