"""The container's health check (`python -m app.healthcheck`) against real gunicorn:
ready once, then live."""

from __future__ import annotations

import subprocess  # nosec B404 - runs the health check as Docker does
import sys
from pathlib import Path

import pytest

from devstack import GunicornServer, free_port
from tests.conftest import served_app

pytestmark = pytest.mark.slow


def check(url: str, marker: Path) -> int:
    """The exit status of the health check, run as the HEALTHCHECK runs it."""
    command = [sys.executable, "-m", "app.healthcheck", "--url", url]
    return subprocess.run(  # nosec B603 - fixed argv
        [*command, "--marker", str(marker)],
        capture_output=True,
        check=False,
        timeout=30,
    ).returncode


def unready_app() -> GunicornServer:
    """The app with its MongoDB unreachable: live, never ready."""
    return GunicornServer(
        {
            "APP_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}/",
            "MONGO_TIMEOUT_MS": "100",
        }
    )


def test_a_replica_never_ready_is_unhealthy(
    tmp_path: Path, gunicorn_servers: list[GunicornServer]
) -> None:
    """Live but unready since it started: unhealthy, so Swarm never routes to it and
    rolls the update back."""
    server = unready_app()
    gunicorn_servers.append(server)
    server.start()
    marker = tmp_path / "ready-once"
    assert check(server.url, marker) == 1
    assert not marker.exists()


def test_once_ready_a_replica_is_healthy_while_live(
    tmp_path: Path, gunicorn_servers: list[GunicornServer]
) -> None:
    """Ready once: from then on liveness alone, so a store outage later restarts
    nothing; a replica that stops answering is unhealthy still."""
    marker = tmp_path / "ready-once"
    ready = served_app(tmp_path / "db")
    gunicorn_servers.append(ready)
    ready.start()
    assert check(ready.url, marker) == 0
    assert marker.exists()
    # The same marker, now before an app whose store is down: still healthy.
    unready = unready_app()
    gunicorn_servers.append(unready)
    unready.start()
    assert check(unready.url, marker) == 0
    unready.stop()
    assert check(unready.url, marker) == 1
