"""The e2e's steady client: what it resends and what it counts as failed."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests

from devstack import GunicornServer, NginxServer, RedisServer, find_binary
from devstack.ports import LOOPBACK, free_port
from devstack.waiting import wait_until
from e2e.load import CREATE, MIXED, ROOT_ONLY, LoadReport, SteadyLoad
from tests.conftest import served_app

ANSWER = json.dumps({"version": "1.0.0", "hostname": "web-1", "visits": 1}).encode()
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
    + ANSWER
)


def serve(server: socket.socket, connections: list[list[bool]]) -> None:
    """Per connection, per request read: answer it (True) or close unanswered."""
    for answers in connections:
        try:
            connection, _ = server.accept()
        except OSError:  # the test is over: its fixture closed the socket
            return
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
    report = answered(SteadyLoad(url, 20, 10, 2, ROOT_ONLY), 2)
    assert (report.sent, report.resent, report.failures) == (2, 1, [])
    assert report.versions == {"1.0.0": 2}


def test_a_new_connection_closed_unanswered_is_a_failure(
    server: socket.socket,
) -> None:
    url = start(server, [[False], [True]])
    report = answered(SteadyLoad(url, 20, 10, 1, ROOT_ONLY), 1)
    assert (report.sent, report.resent, len(report.failures)) == (1, 0, 1)


def test_a_port_refusing_for_longer_than_the_connect_retries_is_a_failure() -> None:
    report = answered(
        SteadyLoad(f"http://{LOOPBACK}:{free_port()}/", 5, 5, 1, ROOT_ONLY), 1
    )
    assert (report.sent, report.resent, len(report.failures)) == (1, 0, 1)


def test_a_refused_connection_is_sent_again_once_the_port_listens() -> None:
    """As the edge replaced stop-first: the port has no listener for a moment. A
    refused connection carried nothing, so even an unkeyed request is safe to resend."""
    port = free_port()
    listening = threading.Event()

    def listen_later() -> None:
        time.sleep(0.3)  # the gap: the test is about a port that listens late
        with socket.create_server((LOOPBACK, port)) as late:
            listening.set()
            serve(late, [[True]])

    threading.Thread(target=listen_later, daemon=True).start()
    report = answered(SteadyLoad(f"http://{LOOPBACK}:{port}/", 5, 5, 1, ROOT_ONLY), 1)
    assert listening.is_set()
    assert (report.sent, report.resent, report.failures) == (1, 1, [])
    assert report.kinds[ROOT_ONLY[0]].resent == 1


def test_every_request_sent_is_on_the_timeline(server: socket.socket) -> None:
    url = start(server, [[True], [False]])
    report = answered(SteadyLoad(url, 20, 10, 2, ROOT_ONLY), 2)
    assert [(a.kind, a.version, a.failed) for a in report.timeline] == [
        ("GET /", "1.0.0", False),
        ("GET /", None, True),
    ]
    assert all(a.seconds >= 0 and a.at > 0 for a in report.timeline)


def note_answer(status: bytes, document: Mapping[str, object]) -> bytes:
    body = json.dumps(document).encode()
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def serve_answers(server: socket.socket, answers: list[bytes | None]) -> None:
    """One connection per answer: None closes it unanswered."""
    for answer in answers:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            if answer is not None:
                connection.sendall(answer)


def test_a_keyed_write_on_a_new_connection_closed_unanswered_is_sent_again_once(
    server: socket.socket,
) -> None:
    """Unlike a GET: the Idempotency-Key makes any resend safe."""
    load = SteadyLoad(
        f"http://{LOOPBACK}:{server.getsockname()[1]}/", 20, 10, 1, [CREATE]
    )
    note = {"id": "a" * 24, "body": "v0", "tags": [load.ledger.tag], "title": ""}
    note["title"] = f"{load.ledger.tag} 1"
    listed = {"notes": [note], "next_cursor": None}
    answers = [None, note_answer(b"201 Created", note), note_answer(b"200 OK", listed)]
    threading.Thread(target=serve_answers, args=(server, answers), daemon=True).start()
    with load:
        wait_until(lambda: load.report.kinds.get(CREATE) is not None, 10, "a create")
    report = load.stop()
    assert (report.sent, report.resent, report.failures) == (1, 1, [])
    assert (report.kinds[CREATE].resent, report.data_problems) == (1, [])


@pytest.mark.slow
def test_the_mixed_load_through_nginx_fails_nothing_and_its_data_check_is_clean(
    tmp_path: Path, redis_server: RedisServer, gunicorn_servers: list[GunicornServer]
) -> None:
    """The real app (gunicorn's 2 workers, Redis, embedded store) behind nginx with
    the stack's limits: at the e2e's rate from two addresses, no kind is refused."""
    app = served_app(tmp_path / "db", REDIS_URL=redis_server.url)
    gunicorn_servers.append(app)
    app.start()
    find_binary("nginx", "nginx")
    with NginxServer(app.port) as nginx:
        load = SteadyLoad(
            f"{nginx.url}/", 8, 60, 2 * len(MIXED), sources=("127.0.0.1", "127.0.0.2")
        )
        with load:
            wait_until(lambda: load.report.sent >= 2 * len(MIXED), 60, "two rounds")
        report = load.report
        assert set(report.kinds) == set(MIXED)
        assert report.failures == [] and report.data_problems == []
        assert report.notes_checked > 0
        # Behind its back: a note of the client's disappears, another is doubled.
        gone, kept = load.ledger.live_ids()[:2]
        requests.delete(f"{nginx.url}/api/notes/{gone}", timeout=10)
        title = load.ledger.current(kept)[0]  # type: ignore[index]
        twin = {"title": title, "tags": [load.ledger.tag]}
        requests.post(f"{nginx.url}/api/notes", json=twin, timeout=10)
        problems = load.ledger.check(nginx.url)
        assert any(gone in problem for problem in problems), problems
        assert any("made twice" in problem for problem in problems), problems


def test_round_robin_over_3_or_5_replicas_gives_each_every_kind() -> None:
    """nginx hands requests to replicas in turn: a mix as long as a multiple of the
    replica count would send some kinds (GET /, which names the replica) to some
    replicas only."""
    for replicas in (3, 5):
        sent = [(index % replicas, MIXED[index % len(MIXED)]) for index in range(999)]
        assert set(sent) == {(r, kind) for r in range(replicas) for kind in MIXED}
