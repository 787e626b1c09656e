"""Every deploy's record, kept on the swarm: who deployed which image and version, when,
and how it ended. `python -m deploy history` prints them; `rollback` picks from them.

Each record is a small Swarm config (`<stack>_deploy_<time>`, labelled with the stack),
written when the deploy ends; the newest KEEP are kept. Configs are never mounted by a
service, so records cost the stack nothing and survive any service update.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from deploy import swarm

RECORD_LABEL = "prework.deploy.record"
KEEP = 50
VERIFIED = "verified"


@dataclass(frozen=True)
class Record:
    """One deploy: actor, version, image (with its digest when deployed by one),
    started and finished (ISO UTC), outcome (`verified`, `rolled back`, ...), message.
    """

    actor: str
    version: str
    image: str
    started: str
    finished: str
    outcome: str
    message: str

    def line(self) -> str:
        """The record as `history` prints it."""
        why = f"  {self.message}" if self.message else ""
        return (
            f"{self.finished}  {self.version:<16} {self.outcome:<12} "
            f"{self.actor}  {self.image}{why}"
        )


def records(stack: str) -> list[Record]:
    """The stack's deploy records, newest first."""
    found = []
    for config in swarm.configs_labelled(RECORD_LABEL, stack):
        try:
            found.append((config.name, Record(**json.loads(config.data))))
        except (TypeError, ValueError):
            continue  # not one of ours: a record is never half-written
    found.sort(key=lambda named: (named[1].finished, named[0]), reverse=True)
    return [record for _, record in found]


def write(stack: str, record: Record) -> None:
    """Keep `record` on the swarm, then drop the oldest beyond KEEP."""
    name = f"{stack}_deploy_{time.time_ns()}"
    swarm.create_config(name, {RECORD_LABEL: stack}, json.dumps(asdict(record)))
    named = sorted(
        swarm.configs_labelled(RECORD_LABEL, stack),
        key=lambda config: config.name,
        reverse=True,
    )
    for config in named[KEEP:]:
        swarm.remove_config(config.name)


class NoTarget(Exception):
    """The history holds no verified deploy to roll back to."""


def rollback_target(history: list[Record], version: str | None) -> Record:
    """The verified deploy to go back to: of `version`, else the one before the
    newest verified one that runs another version."""
    verified = [record for record in history if record.outcome == VERIFIED]
    if version is not None:
        for record in verified:
            if record.version == version:
                return record
        known = ", ".join(dict.fromkeys(r.version for r in verified)) or "none"
        raise NoTarget(
            f"no verified deploy of {version} in the history (known: {known})"
        )
    if not verified:
        raise NoTarget("the history holds no verified deploy")
    current = verified[0].version
    for record in verified:
        if record.version != current:
            return record
    raise NoTarget(f"the history holds no verified deploy before {current}")
