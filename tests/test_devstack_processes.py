"""ServiceProcess: start, readiness, a failed start, and stopping the whole group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devstack import ServiceProcess, StartFailed, free_port, port_open, wait_until

pytestmark = pytest.mark.slow


class HttpServer(ServiceProcess):
    """Python's http.server, started by a shell that leaves a child behind first."""

    name = "http"

    def __init__(self, exit_first: bool = False) -> None:
        super().__init__()
        self.port = free_port()
        self.exit_first = exit_first

    def command(self, folder: Path) -> list[str]:
        serve = f"exec {sys.executable} -m http.server --bind 127.0.0.1 {self.port}"
        script = "exit 3" if self.exit_first else f"sleep 300 & echo $! >pid; {serve}"
        return ["/bin/sh", "-c", script]

    def ready(self) -> bool:
        return port_open(self.port)


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (exited, or a zombie nobody reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def test_a_service_runs_in_its_folder_and_leaves_nothing_behind() -> None:
    with HttpServer() as server:
        assert server.folder is not None and server.folder.is_dir()
        folder = server.folder
        assert port_open(server.port)
        child = int(wait_until(lambda: (folder / "pid").read_text(), 5, "the pid"))
        assert not gone(child)
    assert not folder.exists()
    assert not port_open(server.port)
    wait_until(lambda: gone(child), 5, "the left-behind child to be killed")


def test_a_service_that_exits_fails_to_start_and_cleans_up() -> None:
    server = HttpServer(exit_first=True)
    with pytest.raises(StartFailed, match="http exited with status 3"):
        server.start()
    assert server.process is None and server.folder is None


def test_stop_returns_the_exit_status_and_is_idempotent() -> None:
    server = HttpServer().start()
    assert server.process is not None
    pid = server.process.pid
    assert server.stop() == -15  # SIGTERM
    assert server.stop() == 0
    assert gone(pid)


class FailingServer(ServiceProcess):
    """Says why on stderr, then exits: as a service whose port is taken does."""

    name = "failing"

    def command(self, folder: Path) -> list[str]:
        return [
            "/bin/sh",
            "-c",
            "echo starting; echo 'bind: address in use' >&2; exit 3",
        ]

    def ready(self) -> bool:
        return False


def test_a_failed_start_carries_the_last_lines_the_service_wrote() -> None:
    with pytest.raises(StartFailed) as raised:
        FailingServer().start()
    message = str(raised.value)
    assert message.startswith("failing exited with status 3\nlast lines of ")
    assert message.endswith("    starting\n    bind: address in use")


def test_a_non_transient_error_in_a_condition_is_raised_at_once() -> None:
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise TypeError("a bug, not a service that is still starting")

    with pytest.raises(TypeError):
        wait_until(broken, timeout=30, what="a broken condition")
    assert calls == [1]
