"""A minimal WSGI app standing in for the service behind nginx in proxy tests.

It shows what the app would see: the headers nginx sent, and the client IP after
werkzeug's ProxyFix(x_for=1), the setting the real app uses behind exactly one proxy.
`UPSTREAM_APP` is the one place to swap it for "app:create_app()".
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

UPSTREAM_APP = "tests.nginx_standin_app:app"
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


def gunicorn_command(
    port: int,
    app: str = UPSTREAM_APP,
    workers: int = 2,
    threads: int = 8,
    host: str = "127.0.0.1",
) -> list[str]:
    """argv that serves `app` with gunicorn on `host` (loopback) and `port`."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--no-control-socket",
        "--graceful-timeout",
        "2",
        app,
    ]
