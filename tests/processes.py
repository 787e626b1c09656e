"""Real servers for tests: redis-server and gunicorn on free loopback ports.

Both are context managers that stop what they started even when the test fails.
Other areas reuse them (`from tests.processes import RedisServer, GunicornServer`).
"""

from __future__ import annotations

import os
import subprocess  # nosec B404 - starts the servers under test
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import requests

from nginx.local import port_open, stop
from tests.support import free_port, require_binary, wait_until

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A server a test starts on entry and stops on exit, even when the test fails."""

    def start(self) -> Self:
        """Start the server and return once it answers."""
        raise NotImplementedError

    def stop(self) -> object:
        """Stop the server if it runs."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(ServerProcess):
    """A throwaway redis-server on 127.0.0.1 (no persistence), maybe with a password."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.binary = require_binary("redis-server", "redis-server")
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0 (without the password)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        """Start redis-server and wait until it accepts connections."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(  # nosec B603 - fixed argv
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port), 10, f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        """Stop redis-server (a test may do this mid-way to simulate an outage)."""
        if self.process is not None:
            stop(self.process, 10)
            self.process = None


class GunicornServer(ServerProcess):
    """`gunicorn -c gunicorn.conf.py APP` on a free loopback port, from the repo."""

    def __init__(
        self,
        env: Mapping[str, str],
        app: str = "app:create_app()",
        workers: int = 1,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.app = app
        self.env = {**os.environ, "GUNICORN_WORKERS": str(workers), **env}
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Self:
        """Start gunicorn; with `wait`, return once /healthz answers 200."""
        argv = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        argv += ["-b", f"127.0.0.1:{self.port}", *self.extra_args, self.app]
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(  # nosec B603 - fixed argv
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        if wait:
            wait_until(self.healthy, 30, f"gunicorn on {self.port}")
        return self

    def healthy(self) -> bool:
        """True when /healthz answers 200; fails fast if gunicorn died."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int:
        """SIGTERM (graceful), then SIGKILL after the grace period; the exit code."""
        code = 0
        if self.process is not None:
            code = stop(self.process, 35.0)  # past gunicorn's 30 s graceful timeout
            self.process = None
        return code
