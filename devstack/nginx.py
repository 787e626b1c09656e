"""nginx from the project's template (nginx/render.py) on loopback, in a prefix."""

from __future__ import annotations

import json
import subprocess  # nosec B404 # runs `nginx -t`
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.binaries import find_binary
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess, StartFailed
from nginx.render import write_local_config


def local_overrides(upstream_port: int, listen_port: int) -> dict[str, str]:
    """Template variables that point the stack's config at loopback."""
    return {
        "NGINX_LISTEN": f"{LOOPBACK}:{listen_port}",
        "NGINX_UPSTREAM_HOST": LOOPBACK,
        "NGINX_UPSTREAM_PORT": str(upstream_port),
        # Never queried: the upstream is an address, not a name.
        "NGINX_RESOLVER": LOOPBACK,
    }


def nginx_command(binary: str, config: Path) -> list[str]:
    """argv of nginx on `config`, with its start-up errors kept in the prefix."""
    prefix = config.parent
    error_log = prefix / "logs" / "error.log"
    return [binary, "-p", str(prefix), "-c", str(config), "-e", str(error_log)]


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a rendered nginx.conf; the result carries nginx's own words."""
    binary = find_binary("nginx", "nginx")
    return subprocess.run(  # nosec B603 # fixed argv and no shell
        [*nginx_command(binary, config), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )


class NginxServer(ServiceProcess):
    """nginx on loopback `port` (free by default) in front of loopback `upstream_port`.

    `overrides` replace template.env values (e.g. a small rate for a test). A subclass
    may edit the rendered files in `render` before `nginx -t` runs.
    """

    name = "nginx"
    binary_name = "nginx"
    package = "nginx"
    start_timeout = 15.0

    def __init__(
        self,
        upstream_port: int,
        overrides: Mapping[str, str] | None = None,
        port: int | None = None,
        worker_processes: int = 1,
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.variables = local_overrides(upstream_port, self.port)
        self.variables.update(overrides or {})
        self.worker_processes = worker_processes

    @property
    def url(self) -> str:
        """Base URL of the proxy."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def prefix(self) -> Path:
        """nginx's prefix: its config, logs and temp files (while it runs)."""
        if self.folder is None:
            raise RuntimeError("nginx is not running: it has no prefix")
        return self.folder

    @property
    def config(self) -> Path:
        """The rendered nginx.conf."""
        return self.prefix / "nginx.conf"

    @property
    def access_log(self) -> Path:
        """The JSON access log (one object per line)."""
        return self.prefix / "logs" / "access.log"

    @property
    def error_log(self) -> Path:
        """nginx's error log, which also records every limit_req/limit_conn refusal."""
        return self.prefix / "logs" / "error.log"

    def access_log_entries(self) -> list[dict[str, Any]]:
        """Every access log line so far, parsed."""
        text = self.access_log.read_text() if self.access_log.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line]

    def render(self, folder: Path) -> None:
        """Write nginx.conf and conf.d/ into `folder` (a subclass may edit them)."""
        write_local_config(folder, self.variables, self.worker_processes)

    def prepare(self, folder: Path) -> None:
        self.render(folder)
        checked = check_config(self.config)
        if checked.returncode != 0:
            raise StartFailed(f"nginx -t failed: {checked.stderr.strip()}")

    def command(self, folder: Path) -> list[str]:
        return nginx_command(self.binary, self.config)

    def ready(self) -> bool:
        return port_open(self.port)
