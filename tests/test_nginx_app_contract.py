"""The real app under gunicorn behind a real nginx (the project's template): every byte
a client sends gets the service's contract through the published port."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import requests

from devstack import GunicornServer, NginxServer, find_binary
from tests.conftest import served_app
from tests.raw_http import (
    HTTP_09,
    closed_by_server,
    REFUSED_BY_GUNICORN,
    json_error,
    parse_reply,
    raw_reply,
)
from tests.test_nginx_proxy import SECURITY_HEADERS

pytestmark = pytest.mark.slow

# Short client timeouts, so a slow client is cut off quickly.
SLOW_CLIENT_LIMITS = {
    "NGINX_CLIENT_HEADER_TIMEOUT": "1s",
    "NGINX_CLIENT_BODY_TIMEOUT": "1s",
    "NGINX_SEND_TIMEOUT": "1s",
}
NGINX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """gunicorn.conf.py's defaults on the embedded store."""
    with served_app(tmp_path_factory.mktemp("contract") / "db") as started:
        yield started


@pytest.fixture(scope="module")
def proxy(app_server: GunicornServer) -> Iterator[NginxServer]:
    """Stack defaults, except loopback and the short client timeouts."""
    find_binary("nginx", "nginx")
    with NginxServer(app_server.port, SLOW_CLIENT_LIMITS) as nginx:
        yield nginx


def assert_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name


@pytest.mark.parametrize(
    "request_bytes", REFUSED_BY_GUNICORN.values(), ids=list(REFUSED_BY_GUNICORN)
)
def test_what_gunicorn_refuses_reaches_the_client_as_json(
    proxy: NginxServer, request_bytes: bytes
) -> None:
    headers = json_error(raw_reply(proxy.port, request_bytes), 400, "bad_request")
    assert_security_headers(headers)
    assert NGINX_ID.fullmatch(headers["x-request-id"])


def test_http_09_is_closed_without_an_answer(proxy: NginxServer) -> None:
    assert raw_reply(proxy.port, HTTP_09) == b""


def test_options_is_405_json_with_allow(proxy: NginxServer) -> None:
    request = b"OPTIONS /api/notes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    headers = json_error(raw_reply(proxy.port, request), 405, "method_not_allowed")
    assert set(headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert_security_headers(headers)


@pytest.mark.parametrize(
    ("lines", "first"),
    [
        # nginx 1.22 sees the first line only; 1.23+ sees "first-id, second-id".
        (b"X-Request-ID: first-id\r\nX-Request-ID: second-id\r\n", "first-id"),
        (b"X-Request-ID: first-id, second-id\r\n", "first-id"),
        (b"X-Request-ID: bad id\r\nX-Request-ID: second-id\r\n", None),
        (b"X-Request-ID: bad id, second-id\r\n", None),
    ],
)
def test_duplicate_request_ids_give_the_first_member_on_every_nginx(
    proxy: NginxServer, lines: bytes, first: str | None
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines
    request += b"Connection: close\r\n\r\n"
    status, headers, _ = parse_reply(raw_reply(proxy.port, request))
    assert status == 200
    if first is None:
        assert NGINX_ID.fullmatch(headers["x-request-id"])
    else:
        assert headers["x-request-id"] == first


def test_etags_and_preconditions_pass_through_nginx(proxy: NginxServer) -> None:
    base = f"http://127.0.0.1:{proxy.port}"
    created = requests.post(f"{base}/api/notes", json={"title": "t"}, timeout=10)
    url, etag = base + created.headers["Location"], created.headers["ETag"]
    fresh = requests.get(url, timeout=10)
    assert (fresh.headers["ETag"], fresh.headers["Cache-Control"]) == (etag, "no-cache")
    unchanged = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["ETag"] == etag
    changed = requests.patch(
        url, json={"title": "u"}, headers={"If-Match": etag}, timeout=10
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = requests.delete(url, headers={"If-Match": etag}, timeout=10)
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    assert requests.get(url, timeout=10).json()["title"] == "u"


def served(port: int, source: str) -> bool:
    """True when `source` gets /healthz answered 200."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw_reply(port, request, source)
    return parse_reply(reply)[0] == 200


def test_a_slowloris_is_cut_off_while_other_addresses_are_served(
    proxy: NginxServer,
) -> None:
    """Headers trickled a line at a time never finish: closed after
    client_header_timeout (1 s here) although bytes keep coming."""
    address = ("127.0.0.1", proxy.port)
    with socket.create_connection(address, 0.1, ("127.0.0.20", 0)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert served(proxy.port, "127.0.0.21")
        received = closed_by_server(sock, b"X-Slow: 1\r\n")
    assert b"200" not in received


def test_a_stalled_body_is_cut_off_while_other_addresses_are_served(
    proxy: NginxServer,
) -> None:
    """No byte of the body for client_body_timeout (1 s here): nginx closes the
    connection (it writes no 408 to a client that stopped sending); the app never
    saw the request, nginx buffers whole bodies first."""
    address = ("127.0.0.1", proxy.port)
    head = (
        b"POST /api/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\nConnection: close\r\n\r\n{"title"'
    )
    with socket.create_connection(address, 0.1, ("127.0.0.22", 0)) as sock:
        sock.sendall(head)
        assert served(proxy.port, "127.0.0.23")
        received = closed_by_server(sock, b"")
    assert received == b""
