"""A minimal WSGI app standing in for the service behind nginx in proxy tests.

It shows what the app would see: the headers nginx sent, and the client IP after
werkzeug's ProxyFix(x_for=1), the setting the real app uses behind exactly one proxy.
`devstack.gunicorn.echo_server()` serves it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

MAX_SLEEP = 10.0


def echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """JSON of the request as received; `?sleep=S` answers after S seconds."""
    query = dict(
        part.partition("=")[::2] for part in environ.get("QUERY_STRING", "").split("&")
    )
    time.sleep(min(float(query.get("sleep") or 0), MAX_SLEEP))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    client_ip = environ["REMOTE_ADDR"]
    payload = {
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", ""),
        "client_ip": client_ip,
        "scheme": environ["wsgi.url_scheme"],
        "body_bytes": len(body),
        "headers": {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        },
    }
    data = json.dumps(payload).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            # nginx must hide these (it sets its own).
            ("Server", "standin/1.0"),
            ("X-Powered-By", "standin"),
        ],
    )
    return [data]


app = ProxyFix(echo, x_for=1, x_proto=1)
