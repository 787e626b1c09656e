"""Wait for a condition by polling it, never by sleeping a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL = 0.05


class TimedOut(AssertionError):
    """A condition never held: for a test or the e2e, an expectation that failed."""


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns a truthy value (returned); TimedOut after.

    An exception from `condition` counts as "not yet" and is shown if time runs out.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last_error = error
        else:
            if value:
                return value
        time.sleep(POLL_INTERVAL)
    raise TimedOut(f"timed out after {timeout}s waiting for {what}: {last_error}")
