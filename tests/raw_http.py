"""HTTP requests sent byte for byte, as no HTTP client library would send them."""

from __future__ import annotations

import json
import socket
from typing import Any

# Requests gunicorn refuses (its parser is stricter than nginx's, which passes them
# on): a control byte or DEL in a header value, raw non-ASCII bytes in the path or the
# query, methods of 2 and 21 letters (gunicorn takes 3-20). Each must be answered in
# the service's JSON error shape, through nginx and on the app's port alike.
REFUSED_BY_GUNICORN = {
    "escape in User-Agent": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    b"User-Agent: \x1b[31mred\r\nConnection: close\r\n\r\n",
    "DEL in X-Forwarded-For": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    b"X-Forwarded-For: 10.0.0.1\x7f\r\nConnection: close\r\n\r\n",
    "control byte in Cookie": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    b"Cookie: a=\x01b\r\nConnection: close\r\n\r\n",
    "DEL in Content-Type": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: application/json\x7f\r\nConnection: close\r\n\r\n",
    "non-ASCII path": b"GET /api/notes/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
    "non-ASCII query": b"GET /api/notes?tag=caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
    "2-letter method": b"GE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "21-letter method": b"ABCDEFGHIJKLMNOPQRSTU /healthz HTTP/1.1\r\nHost: x\r\n"
    b"Connection: close\r\n\r\n",
}
# A request line without a version: HTTP/0.9, whose answer has no status or headers.
HTTP_09 = b"GET /api/notes?limit=1\r\n"


def raw_reply(
    port: int, request: bytes, source: str = "127.0.0.1", timeout: float = 20
) -> bytes:
    """Send `request` as is on a new connection from `source` and read until the
    server closes it (send `Connection: close`); every byte received."""
    address = ("127.0.0.1", port)
    with socket.create_connection(address, timeout, (source, 0)) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def parse_reply(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names; a repeated one keeps its last value) and
    body (de-chunked) of one HTTP/1.x response."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(status_line.split()[1]), headers, body


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is on a new connection and read until the server closes it
    (send `Connection: close`); status, headers and body."""
    return parse_reply(raw_reply(port, request))


def json_error(data: bytes, status: int, code: str) -> dict[str, Any]:
    """The headers of a reply that must be a JSON error with `status` and `code`."""
    got, headers, body = parse_reply(data)
    assert got == status, data
    assert headers["content-type"] == "application/json", data
    assert json.loads(body)["error"]["code"] == code, data
    return headers


def closed_by_server(sock: socket.socket, feed: bytes, rounds: int = 60) -> bytes:
    """Send `feed` (a byte of headers or body) every 0.1 s until the server closes
    the connection, at most `rounds` times; what it sent before closing."""
    received = b""
    for _ in range(rounds):
        try:
            if feed:
                sock.sendall(feed)
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {rounds} rounds: {received!r}")


def dechunk(data: bytes) -> bytes:
    """The payload of a chunked body."""
    payload = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return payload
        payload, data = payload + data[:size], data[size + 2 :]
