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


@pytest.fixture
def closes_the_first_connection() -> Iterator[int]:
    """A server that reads the first request and closes without an answer (as nginx
    closing an idle kept-alive connection at a reload), then answers 200."""
    server = socket.create_server((LOOPBACK, 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for answer in (False, True):
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                if answer:
                    connection.sendall(OK)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.close()
    thread.join(timeout=10)


def answered_once(load: SteadyLoad) -> LoadReport:
    """Run the client until its one request has an outcome (it stops by itself)."""
    with load:
        wait_until(
            lambda: bool(load.report.versions or load.report.failures), 30, "an answer"
        )
    return load.report


def test_a_get_closed_before_its_answer_is_sent_again_once(
    closes_the_first_connection: int,
) -> None:
    load = SteadyLoad(f"http://{LOOPBACK}:{closes_the_first_connection}/", 5, 5, 1)
    report = answered_once(load)
    assert (report.sent, report.resent, report.failures) == (1, 1, [])
    assert report.versions == {"1.0.0": 1}


def test_a_refused_connection_is_a_failure_not_resent() -> None:
    load = SteadyLoad(f"http://{LOOPBACK}:{free_port()}/", 5, 5, 1)
    report = answered_once(load)
    assert (report.sent, report.resent, len(report.failures)) == (1, 0, 1)
