"""Wait for a condition by polling it, never by sleeping a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL = 0.05
# What a condition raises while what it asks for is not there yet: a refused, reset or
# timed-out connection (requests' errors are OSErrors too), a command or engine call
# that failed (CommandFailed, DockerError), an answer not complete yet (a missing key
# or item, JSON cut short), an expectation not met yet (an assert in the condition).
# Anything else (a TypeError, AttributeError, NameError, ...: a bug in the condition)
# is raised at once instead of retried until the deadline.
TRANSIENT: tuple[type[Exception], ...] = (
    OSError,
    RuntimeError,
    LookupError,
    ValueError,
    AssertionError,
)


class TimedOut(AssertionError):
    """A condition never held: for a test or the e2e, an expectation that failed."""


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns a truthy value (returned); TimedOut after.

    A TRANSIENT exception from `condition` counts as "not yet" and is shown if time
    runs out; any other is raised at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except TRANSIENT as error:
            last_error = error
        else:
            if value:
                return value
        time.sleep(POLL_INTERVAL)
    raise TimedOut(f"timed out after {timeout}s waiting for {what}: {last_error}")
