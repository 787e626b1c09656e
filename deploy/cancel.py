"""SIGINT and SIGTERM as an exception, so that a cancelled deploy still rolls back.

GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later, then SIGKILL; a person
presses Ctrl-C. The first signal raises Cancelled where the deploy is, and the deploy's
own failure path asks Swarm for the rollback (detached: Swarm carries it out even if
this process is killed next). Later signals are noted and ignored, so that they cannot
cut that path short.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Cancelled(Exception):
    """The deploy was asked to stop by a signal."""


def note_and_ignore(signum: int, frame: FrameType | None) -> None:
    """A second signal: the rollback is under way, say so and go on."""
    name = signal.Signals(signum).name
    print(f"deploy: {name} ignored: the rollback is under way", file=sys.stderr)


def raise_cancelled(signum: int, frame: FrameType | None) -> None:
    """The first signal: from now on ignore the rest, and stop the deploy."""
    for other in SIGNALS:
        signal.signal(other, note_and_ignore)
    raise Cancelled(f"cancelled by {signal.Signals(signum).name}")


@contextmanager
def signals_cancel() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise Cancelled (once)."""
    previous = {number: signal.signal(number, raise_cancelled) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
