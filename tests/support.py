"""Helpers shared by tests that start real processes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

# The runtime code that finds a Debian binary (PATH or sbin); tests reuse it.
from nginx.local import MissingBinary, find_binary

T = TypeVar("T")
# Ports free_port returned in this test session.
HANDED_OUT: set[int] = set()


def services_required() -> bool:
    """True when a missing binary must fail the run instead of skipping (CI)."""
    return os.environ.get("PREWORK_REQUIRE_SERVICES", "") not in ("", "0")


def require_binary(name: str, package: str) -> str:
    """Path of `name`; skip (or fail under PREWORK_REQUIRE_SERVICES=1) when absent."""
    try:
        return find_binary(name, package)
    except MissingBinary as missing:
        if services_required():
            pytest.fail(f"{missing} (PREWORK_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(str(missing))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now, never handed out before.

    Two bare probes can return the same port, e.g. for nginx and its upstream.
    """
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in HANDED_OUT:
            HANDED_OUT.add(port)
            return port


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns a truthy value; fail after `timeout` s."""
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
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last_error}")
