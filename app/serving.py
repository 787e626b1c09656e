"""The gunicorn worker the service runs in: gthread, with the service's error contract.

gunicorn refuses some requests before the app sees them (a control byte in a header
value, raw non-ASCII bytes in the request line, a method of 2 or 21 letters, a
malformed chunk header...) and answers those with an HTML page of its own. nginx passes
such requests on, so the page would reach clients. This worker answers them in the
service's JSON error shape instead, with a request id; nginx adds its security headers
and its own request id on the way out. gunicorn decides what it refuses, so its rules
live in one place, not copied into the proxy's template.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import ThreadWorker

from app.errors import HTTP_CODES, error_document
from app.observability import REQUEST_ID_HEADER, request_id_from

# gunicorn's messages quote what the client sent; enough of it to say what was wrong.
MESSAGE_MAX = 200


def error_exchange(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP response for a request gunicorn refused: JSON, then close."""
    body = json.dumps(
        {"error": error_document(HTTP_CODES.get(status, "error"), message)},
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body) + 1}\r\n"
        "Cache-Control: no-store\r\n"
        f"{REQUEST_ID_HEADER}: {request_id_from(None)}\r\n\r\n"
    )
    return head.encode("latin-1") + body + b"\n"


def write_json_error(sock: socket.socket, status: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering JSON instead of HTML."""
    message = (mesg or reason)[:MESSAGE_MAX]
    util.write_nonblock(sock, error_exchange(status, reason, message))


class ServiceWorker(ThreadWorker):  # type: ignore[misc] # gunicorn has no type hints
    """gunicorn's gthread worker, answering its own refusals in JSON, and giving up on
    a client that sends or reads nothing for `client_timeout` seconds mid-request."""

    client_timeout: float = 10.0

    def init_process(self) -> None:
        # gunicorn has no setting for its error page: this one function writes it.
        util.write_error = write_json_error
        super().init_process()

    def handle_quit(self, sig: int, frame: Any) -> None:
        # gthread's own SIGQUIT/SIGINT handler shuts its thread pool down, which takes
        # the pool's lock: when the signal lands while the main thread is inside
        # `tpool.submit` (holding that lock: a request just accepted), the worker
        # deadlocks until the master SIGKILLs it after graceful_timeout (Ctrl-C on
        # `nox -s serve` mid-request; CPython issue 121649). Skip it: the base handler
        # exits, and interpreter exit shuts the pool down once the lock is released.
        Worker.handle_quit(self, sig, frame)

    def handle(self, conn: Any) -> Any:
        # gthread reads a request and writes its response on a blocking socket with
        # no timeout: a client that stops mid-request (a chunk size it never fills,
        # bare-LF chunk lines) held its thread forever, and a worker told to stop
        # waited for that thread until the master killed it. `handle` makes the
        # socket blocking, then calls `conn.init()`: from there on (the request line,
        # headers, body and the response) each read and write is bounded.
        # Once per connection: a kept-alive one comes back here for each request.
        if not getattr(conn, "bounded", False):
            init = conn.init

            def init_bounded() -> None:
                init()
                conn.sock.settimeout(self.client_timeout)

            conn.init, conn.bounded = init_bounded, True
        return super().handle(conn)


def service_worker(client_timeout: float) -> type[ServiceWorker]:
    """ServiceWorker with `client_timeout` (GUNICORN_CLIENT_TIMEOUT)."""
    return type("ServiceWorker", (ServiceWorker,), {"client_timeout": client_timeout})
