"""gunicorn settings for the prework service (read by `gunicorn 'app:create_app()'`).

Command-line flags (`-b`, `-w`) override these; so do the environment variables below.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# gunicorn puts its working directory (--chdir, by default the current one) on
# sys.path before it reads this file, so `app` imports from the checkout or /app.
from app.config import ConfigError, load_settings
from app.serving import service_worker

# Refuse bad settings once, in the master, in one line: workers would only respawn.
try:
    SETTINGS = load_settings(os.environ)
except ConfigError as error:
    sys.exit(f"prework: configuration error: {error}")

wsgi_app = "app:create_app()"
bind = [SETTINGS.server.bind]
# 2 cores: two processes, a few threads each for requests waiting on Redis/MongoDB.
workers = SETTINGS.server.workers
threads = SETTINGS.server.threads
# gthread, answering what gunicorn itself refuses in the service's JSON error shape
# and cutting off a client idle for GUNICORN_CLIENT_TIMEOUT s mid-request.
worker_class = service_worker(SETTINGS.server.client_timeout)
timeout = 30
# Requests in flight get 30 s after SIGTERM; the stack's stop_grace_period is longer.
graceful_timeout = 30
# nginx keeps idle keep-alive connections to the replicas (its upstream `keepalive`);
# 75 s outlasts its 60 s keepalive_timeout, so nginx closes an idle connection first
# and never reuses one gunicorn is closing.
keepalive = 75
# The heartbeat file on tmpfs: a container's overlay disk can stall it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# nginx's address on the overlay network is not fixed; only nginx can reach this port.
forwarded_allow_ips = SETTINGS.server.forwarded_allow_ips
# Only the scheme header nginx sets (it drops the others a client sends): with
# gunicorn's default three, a client's X-Forwarded-Ssl against nginx's
# X-Forwarded-Proto made gunicorn answer its own HTML 400.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# nginx bounds the request line and headers (large_client_header_buffers) and answers
# JSON past them; whatever it passes on, gunicorn must take rather than answer HTML.
limit_request_line = 0
limit_request_field_size = 0
limit_request_fields = 32768
# One shared $HOME/.gunicorn/gunicorn.ctl would collide between servers; none is used.
control_socket_disable = True
# The app writes one JSON line per request itself; gunicorn's own messages go to stdout.
accesslog = None
logconfig_dict: dict[str, Any] = {
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": False,
        },
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    }
}


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's metric files when metrics are shared between workers."""
    if SETTINGS.metrics_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
            worker.pid, str(SETTINGS.metrics_dir)
        )
