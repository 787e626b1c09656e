"""Input the service must refuse, sent straight to real gunicorn (its 2 workers)."""

from __future__ import annotations

import json
import re
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
import requests

from app.observability import KNOWN_METHODS, OTHER_METHOD
from devstack import GunicornServer, wait_until
from tests.conftest import served_app
from tests.raw_http import (
    HTTP_09,
    REFUSED_BY_GUNICORN,
    json_error,
    parse_reply,
    raw_exchange,
    raw_reply,
)

pytestmark = pytest.mark.slow

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """gunicorn.conf.py's defaults on the embedded store, as `nox -s serve` runs it;
    one for the module, so each test looks only at the notes it names."""
    folder = tmp_path_factory.mktemp("hostile")
    started = served_app(folder / "db")
    started.log_path = folder / "app.log"
    with started:
        yield started


def titles(server: GunicornServer) -> list[str]:
    """The titles of every stored note."""
    listed = requests.get(f"{server.url}/api/notes?limit=100", timeout=10).json()
    return [note["title"] for note in listed["notes"]]


def chunked_post(body: bytes, chunk_size: int = 8192) -> bytes:
    """POST /api/notes with `body` in chunks and no Content-Length."""
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + chunk_size]), body[i : i + chunk_size])
        for i in range(0, len(body), chunk_size)
    )
    return (
        b"POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def padded(size: int, title: str = "padded") -> bytes:
    """A valid note of exactly `size` bytes: the title, then spaces."""
    note = b'{"title": "%s"}' % title.encode()
    return note[:-1] + b" " * (size - len(note)) + b"}"


@pytest.mark.parametrize("over", [1, 40_000])
def test_a_chunked_body_over_the_limit_is_413_never_stored(
    server: GunicornServer, over: int
) -> None:
    title = f"over by {over}"
    status, headers, body = raw_exchange(
        server.port, chunked_post(padded(MAX_BODY + over, title))
    )
    assert status == 413, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert title not in titles(server)


def test_a_chunked_invalid_body_over_the_limit_is_413_not_400(
    server: GunicornServer,
) -> None:
    status, _, body = raw_exchange(server.port, chunked_post(b"[" * (MAX_BODY + 10)))
    assert status == 413, body


def test_a_chunked_body_at_the_limit_is_stored(server: GunicornServer) -> None:
    status, _, body = raw_exchange(server.port, chunked_post(padded(MAX_BODY)))
    assert status == 201, body
    assert json.loads(body)["title"] == "padded"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"title": "\\ud800"}',
        b'{"title": "ok", "body": "a\\udfffb"}',
        b'{"title": "\xff\xfe not utf-8"}',
    ],
)
def test_text_that_is_not_unicode_is_422(
    server: GunicornServer, payload: bytes
) -> None:
    before = len(titles(server))
    response = requests.post(
        f"{server.url}/api/notes",
        data=payload,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_failed"
    assert len(titles(server)) == before


def test_a_patch_with_a_lone_surrogate_is_422_and_changes_nothing(
    server: GunicornServer,
) -> None:
    note = requests.post(f"{server.url}/api/notes", json={"title": "t"}, timeout=10)
    url = f"{server.url}/api/notes/{note.json()['id']}"
    response = requests.patch(
        url,
        data=b'{"body": "\\ud83d"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"body"}
    assert requests.get(url, timeout=10).json()["body"] == ""


def app_log(server: GunicornServer) -> str:
    """What gunicorn and the app have written so far."""
    assert server.log_path is not None
    return server.log_path.read_text()


@pytest.mark.parametrize(
    "request_bytes", REFUSED_BY_GUNICORN.values(), ids=list(REFUSED_BY_GUNICORN)
)
def test_what_gunicorn_refuses_is_answered_in_json(
    server: GunicornServer, request_bytes: bytes
) -> None:
    headers = json_error(raw_reply(server.port, request_bytes), 400, "bad_request")
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert headers["connection"] == "close"


def test_http_09_is_refused_with_a_json_400(server: GunicornServer) -> None:
    json_error(raw_reply(server.port, HTTP_09), 400, "bad_request")


def test_options_is_405_with_allow_as_openapi_says(server: GunicornServer) -> None:
    request = b"OPTIONS /api/notes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    headers = json_error(raw_reply(server.port, request), 405, "method_not_allowed")
    assert set(headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_unknown_methods_share_one_metrics_label(server: GunicornServer) -> None:
    for method in (b"ZQPMYBBEUDMH", b"QWERTYUIOP", b"GET"):
        request = method + b" /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert parse_reply(raw_reply(server.port, request))[0] in (200, 405)
    # Each of the 2 workers has its own registry (no PROMETHEUS_MULTIPROC_DIR here):
    # ask until both have been seen.
    labels: set[str] = set()

    def both_workers_seen() -> bool:
        text = requests.get(f"{server.url}/metrics", timeout=10).text
        labels.update(
            re.findall(r'prework_http_requests_total\{[^}]*method="([^"]*)"', text)
        )
        return OTHER_METHOD in labels

    wait_until(both_workers_seen, timeout=10, what="the other-method bucket")
    assert labels <= KNOWN_METHODS | {OTHER_METHOD}, labels


@pytest.mark.parametrize(
    ("lines", "first"),
    [
        (b"X-Request-ID: first-id\r\nX-Request-ID: second-id\r\n", "first-id"),
        (b"X-Request-ID: first-id, second-id\r\n", "first-id"),
        (b"X-Request-ID: bad id\r\nX-Request-ID: second-id\r\n", None),
    ],
)
def test_the_first_member_of_x_request_id_is_the_request_id(
    server: GunicornServer, lines: bytes, first: str | None
) -> None:
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"Connection: close\r\n\r\n"
    )
    status, headers, _ = parse_reply(raw_reply(server.port, request))
    assert status == 200
    if first is None:
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    else:
        assert headers["x-request-id"] == first


MALFORMED_CHUNKED = {
    "bad chunk extension": b"2;\x01=x\r\n{}\r\n0\r\n\r\n",
    "0x size": b"0x2\r\n{}\r\n0\r\n\r\n",
    "negative size": b"-2\r\n{}\r\n0\r\n\r\n",
    "short size": b"1\r\n{}\r\n0\r\n\r\n",
    "Content-Length trailer": b"2\r\n{}\r\n0\r\nContent-Length: 5\r\n\r\n",
}
CHUNKED_HEAD = (
    b"POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


@pytest.mark.parametrize(
    "body", MALFORMED_CHUNKED.values(), ids=list(MALFORMED_CHUNKED)
)
def test_a_malformed_chunked_body_is_400_without_a_traceback(
    server: GunicornServer, body: bytes
) -> None:
    reply = raw_reply(server.port, CHUNKED_HEAD + body)
    json_error(reply, 400, "bad_request")
    assert "Traceback" not in app_log(server)


def test_a_stalled_body_is_cut_off_and_the_worker_stops_on_sigint(
    tmp_path: Path,
) -> None:
    """A bare-LF chunked body never completes its chunk-size line: the thread reading
    it used to wait forever, and SIGINT then waited for that thread until gunicorn's
    30 s graceful timeout killed the worker."""
    log = tmp_path / "app.log"
    stalled = served_app(tmp_path / "db", GUNICORN_CLIENT_TIMEOUT="1")
    stalled.log_path = log
    with stalled, socket.create_connection(("127.0.0.1", stalled.port), 20) as sock:
        sock.sendall(CHUNKED_HEAD + b"2\n{}\n0\n\n")  # and never anything more
        json_error(sock.recv(65536), 408, "request_timeout")
        with socket.create_connection(("127.0.0.1", stalled.port), 20) as other:
            other.sendall(CHUNKED_HEAD + b"2\n{}")  # held open while stopping
            process = stalled.process
            assert process is not None
            process.send_signal(signal.SIGINT)
            wait_until(
                lambda: process.poll() is not None, timeout=20, what="gunicorn to stop"
            )
    assert process.returncode == 0
    assert "SIGKILL" not in log.read_text()
    assert "Traceback" not in log.read_text()


def new_note(server: GunicornServer, title: str) -> requests.Response:
    """POST a note; the 201 answer."""
    response = requests.post(
        f"{server.url}/api/notes", json={"title": title}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response


def test_two_editors_with_the_same_etag_one_wins_one_gets_412(
    server: GunicornServer,
) -> None:
    """Both PATCHes at once, through gunicorn's 2 workers and threads, 10 times."""
    for round_number in range(10):
        created = new_note(server, f"race {round_number}")
        url = f"{server.url}{created.headers['Location']}"
        etag = created.headers["ETag"]
        start = Barrier(2)

        def edit(title: str) -> requests.Response:
            start.wait(timeout=10)
            return requests.patch(
                url, json={"title": title}, headers={"If-Match": etag}, timeout=10
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            replies = list(pool.map(edit, ["editor a", "editor b"]))
        statuses = sorted(reply.status_code for reply in replies)
        assert statuses == [200, 412], [reply.text for reply in replies]
        winner = next(reply for reply in replies if reply.status_code == 200)
        loser = next(reply for reply in replies if reply.status_code == 412)
        assert loser.json()["error"]["code"] == "precondition_failed"
        stored = requests.get(url, timeout=10)
        assert stored.json()["title"] == winner.json()["title"]
        assert stored.headers["ETag"] == winner.headers["ETag"] != etag
