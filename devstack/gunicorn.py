"""gunicorn serving an app from this checkout on a free loopback port."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess

# The checkout: gunicorn runs here so `app` and the test apps import as packages.
ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "gunicorn.conf.py"
# The bare WSGI stand-in for the service behind nginx (devstack/echo_app.py).
ECHO_APP = "devstack.echo_app:app"


class GunicornServer(ServiceProcess):
    """`gunicorn -c gunicorn.conf.py APP` on a free loopback port, from the checkout.

    Ready once `health_path` answers 200 (or, with None, once the port listens).
    `config=None` runs gunicorn on its own defaults plus `extra_args`.
    """

    name = "gunicorn"
    # Past gunicorn's 30 s graceful timeout, so a graceful stop can finish.
    stop_timeout = 35.0

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        app: str = "app:create_app()",
        workers: int = 1,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        config: Path | None = CONFIG,
        health_path: str | None = "/healthz",
        port: int | None = None,
        host: str = LOOPBACK,
    ) -> None:
        super().__init__(log_path)
        self.binary = sys.executable  # `python -m gunicorn` of this environment
        self.host = host
        self.port = port or free_port(host)
        self.app = app
        self.env = {**os.environ, "GUNICORN_WORKERS": str(workers), **(env or {})}
        self.workers = workers
        self.extra_args = list(extra_args)
        self.config = config
        self.health_path = health_path

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://{self.host}:{self.port}"

    def command(self, folder: Path) -> list[str]:
        argv = [self.binary, "-m", "gunicorn"]
        if self.config is not None:
            argv += ["-c", str(self.config)]
        else:
            argv += ["--workers", str(self.workers)]
        return [*argv, "-b", f"{self.host}:{self.port}", *self.extra_args, self.app]

    def workdir(self, folder: Path) -> Path:
        return ROOT

    def environment(self) -> dict[str, str]:
        return self.env

    def ready(self) -> bool:
        if self.health_path is None:
            return port_open(self.port, self.host)
        # The standard library, not requests: `nox -s serve` installs only the service.
        url = f"{self.url}{self.health_path}"
        with urllib.request.urlopen(url, timeout=2) as answer:  # nosec B310 - loopback
            return bool(answer.status == 200)


def echo_server(
    port: int | None = None,
    threads: int = 8,
    host: str = LOOPBACK,
    workers: int = 2,
) -> GunicornServer:
    """devstack.echo_app (no config file), 2 gthread workers, ready once it answers.

    Answering, not just listening: the master listens before its workers can serve,
    and a proxy in front with a short upstream timeout would see that gap.
    """
    args = ["--worker-class", "gthread", "--threads", str(threads)]
    args += ["--no-control-socket", "--graceful-timeout", "2"]
    return GunicornServer(
        app=ECHO_APP,
        workers=workers,
        extra_args=args,
        config=None,
        health_path="/",  # the echo answers any path with 200
        port=port,
        host=host,
    )
