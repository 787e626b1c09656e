"""A throwaway redis-server on loopback: no persistence, maybe a password."""

from __future__ import annotations

from pathlib import Path

from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess


class RedisServer(ServiceProcess):
    """redis-server on a free loopback port; `stop()` then `start()` keeps the port."""

    name = "redis"
    binary_name = "redis-server"
    package = "redis-server"
    start_timeout = 10.0

    def __init__(self, password: str | None = None, port: int | None = None) -> None:
        super().__init__()
        self.password = password
        self.port = port or free_port()

    @property
    def url(self) -> str:
        """redis://127.0.0.1:PORT/0 (without the password)."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self, folder: Path) -> list[str]:
        argv = [self.binary, "--bind", LOOPBACK, "--port", str(self.port)]
        argv += ["--dir", str(folder), "--save", "", "--appendonly", "no"]
        argv += ["--loglevel", "warning"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv

    def ready(self) -> bool:
        return port_open(self.port)
