"""Whatever a client sends to the published port (real nginx from the project's
template in front of real gunicorn with its 2 workers), the answer is the API's JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import GunicornServer, NginxServer
from tests.conftest import served_app
from tests.raw_http import raw_exchange

pytestmark = pytest.mark.slow

HOST = b"Host: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """nginx in front of gunicorn.conf.py's defaults, as the stack runs them."""
    with served_app(tmp_path_factory.mktemp("edge") / "db") as app:
        with NginxServer(app.port) as nginx:
            yield nginx


def get(path: bytes, headers: bytes = b"", method: bytes = b"GET") -> bytes:
    """A request of `method` for `path` with Host and `headers`, closing after."""
    return (
        method
        + b" "
        + path
        + b" HTTP/1.1\r\n"
        + HOST
        + headers
        + b"Connection: close\r\n\r\n"
    )


def many_headers(count: int) -> bytes:
    """`count` small distinct headers."""
    return b"".join(b"X-Extra-%d: %d\r\n" % (index, index) for index in range(count))


# (what, raw request, expected status); every answer must be the API's JSON.
HOSTILE = [
    ("X-Forwarded-Ssl", get(b"/healthz", b"X-Forwarded-Ssl: on\r\n"), 200),
    (
        "X-Forwarded-Protocol against Proto",
        get(b"/healthz", b"X-Forwarded-Protocol: ssl\r\nX-Forwarded-Proto: http\r\n"),
        200,
    ),
    ("X-Forwarded-Proto https", get(b"/healthz", b"X-Forwarded-Proto: https\r\n"), 200),
    ("URL past gunicorn's old limit", get(b"/api/notes/" + b"a" * 6000), 404),
    ("URL past nginx's buffers", get(b"/api/notes/" + b"a" * 9000), 414),
    ("header of 6 KiB", get(b"/healthz", b"X-Big: " + b"b" * 6000 + b"\r\n"), 200),
    ("header of 9 KiB", get(b"/healthz", b"X-Big: " + b"b" * 9000 + b"\r\n"), 431),
    ("150 headers", get(b"/healthz", many_headers(150)), 200),
    ("40 KiB of headers", get(b"/healthz", many_headers(3000)), 431),
    (
        "X-Forwarded-For of 8 KiB",
        get(b"/healthz", b"X-Forwarded-For: " + b"1" * 8100 + b"\r\n"),
        200,
    ),
    ("unknown method", get(b"/api/notes", method=b"FROB"), 405),
    ("TRACE", get(b"/", method=b"TRACE"), 405),
    ("lower-case method", get(b"/", method=b"get"), 400),
    ("request line of garbage", b"\x16\x03\x01 garbage\r\n\r\n", 400),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505),
    ("%00 in the path", get(b"/api/notes/%00"), 400),
    ("NUL byte in the path", get(b"/api/\x00notes"), 400),
    ("bad header line", get(b"/", b"No colon here\r\n"), 400),
    ("unknown Transfer-Encoding", get(b"/", b"Transfer-Encoding: gzip\r\n"), 501),
    (
        "chunked and Content-Length",
        get(
            b"/api/notes",
            b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
            method=b"POST",
        ),
        400,
    ),
    ("nginx's own error page", get(b"/.prework-error/400"), 404),
    ("Host with a space", get(b"/", b"Host: a b\r\n").replace(HOST, b""), 400),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [pytest.param(raw, status, id=what) for what, raw, status in HOSTILE],
)
def test_every_answer_of_the_published_port_is_json(
    edge: NginxServer, request_bytes: bytes, status: int
) -> None:
    got, headers, body = raw_exchange(edge.port, request_bytes)
    assert (got, headers.get("content-type")) == (status, "application/json"), body
    document = json.loads(body)
    if status >= 400:
        error = document["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
    assert headers["x-content-type-options"] == "nosniff"


def test_merged_slashes_never_redirect_to_the_clients_host(edge: NginxServer) -> None:
    got, headers, body = raw_exchange(
        edge.port,
        b"GET //api//notes HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    assert "location" not in headers
    assert got == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_trusted_hosts_answer_400_to_any_other_host(
    tmp_path: Path, gunicorn_servers: list[GunicornServer]
) -> None:
    server = GunicornServer(
        {
            "APP_ENV": "development",
            "EMBEDDED_STORE_DIR": str(tmp_path / "db"),
            "TRUSTED_HOSTS": "notes.example,.internal.example,127.0.0.1",
        },
        workers=2,
    )
    gunicorn_servers.append(server)
    server.start()

    def status(host: bytes) -> tuple[int, bytes]:
        got, _, body = raw_exchange(
            server.port,
            b"GET /api/notes HTTP/1.1\r\nHost: "
            + host
            + b"\r\nConnection: close\r\n\r\n",
        )
        return got, body

    for trusted in [b"notes.example", b"a.internal.example", b"127.0.0.1:80"]:
        assert status(trusted)[0] == 200, trusted
    got, body = status(b"evil.example")
    assert got == 400 and json.loads(body)["error"]["code"] == "bad_request"
