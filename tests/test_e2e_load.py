"""The e2e's steady client: what it resends and what it counts as failed."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from devstack.ports import LOOPBACK, free_port
from devstack.waiting import wait_until
from e2e.load import LoadReport, SteadyLoad

ANSWER = json.dumps({"version": "1.0.0", "hostname": "web-1", "visits": 1}).encode()
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
    + ANSWER
)


def serve(server: socket.socket, connections: list[list[bool]]) -> None:
    """Per connection, per request read: answer it (True) or close unanswered."""
    for answers in connections:
        connection, _ = server.accept()
        with connection:
            for answer in answers:
                connection.recv(65536)
                if not answer:
                    break
                connection.sendall(OK)


@pytest.fixture
def server() -> Iterator[socket.socket]:
    listening = socket.create_server((LOOPBACK, 0))
    yield listening
    listening.close()


def start(server: socket.socket, connections: list[list[bool]]) -> str:
    thread = threading.Thread(target=serve, args=(server, connections), daemon=True)
    thread.start()
    return f"http://{LOOPBACK}:{server.getsockname()[1]}/"


def answered(load: SteadyLoad, count: int) -> LoadReport:
    """Run the client until `count` requests have an outcome (it stops by itself)."""

    def outcomes() -> int:
        return sum(load.report.versions.values()) + len(load.report.failures)

    with load:
        wait_until(lambda: outcomes() >= count, 30, f"{count} outcomes")
    return load.report


def test_a_get_on_a_kept_alive_connection_closed_unanswered_is_sent_again_once(
    server: socket.socket,
) -> None:
    """As nginx closing an idle kept-alive connection at a reload."""
    url = start(server, [[True, False], [True]])
    report = answered(SteadyLoad(url, 20, 10, 2), 2)
    assert (report.sent, report.resent, report.failures) == (2, 1, [])
    assert report.versions == {"1.0.0": 2}


def test_a_new_connection_closed_unanswered_is_a_failure(
    server: socket.socket,
) -> None:
    url = start(server, [[False], [True]])
    report = answered(SteadyLoad(url, 20, 10, 1), 1)
    assert (report.sent, report.resent, len(report.failures)) == (1, 0, 1)


def test_a_refused_connection_is_a_failure_not_resent() -> None:
    report = answered(SteadyLoad(f"http://{LOOPBACK}:{free_port()}/", 5, 5, 1), 1)
    assert (report.sent, report.resent, len(report.failures)) == (1, 0, 1)


def test_every_request_sent_is_on_the_timeline(server: socket.socket) -> None:
    url = start(server, [[True], [False]])
    report = answered(SteadyLoad(url, 20, 10, 2), 2)
    assert [(a.kind, a.version, a.failed) for a in report.timeline] == [
        ("GET /", "1.0.0", False),
        ("GET /", None, True),
    ]
    assert all(a.seconds >= 0 and a.at > 0 for a in report.timeline)
