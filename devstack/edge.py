"""The stack's edge (nginx/templates/edge.conf.template) on loopback, in a prefix.

A TCP proxy in front of one or more nginx servers that listen with the PROXY protocol;
as in the stack, nginx/upstream-watch.sh runs beside it and keeps its servers file
equal to what NGINX_UPSTREAM_HOST resolves to.
"""

from __future__ import annotations

import subprocess  # nosec B404 # runs `nginx -V`, `nginx -t` and the watcher
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from devstack.binaries import MissingBinary, find_binary
from devstack.nginx import UpstreamWatch, watch_environment
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess, StartFailed
from nginx.render import UPSTREAM_WATCH, edge_local_variables, write_local_edge_config

# Where Debian's libnginx-mod-stream puts the module; its nginx is built with
# `--with-stream=dynamic`. An nginx with the module built in needs no line.
DEBIAN_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def stream_modules(binary: str) -> str:
    """The `modules.conf` text this nginx needs for `stream`, or MissingBinary."""
    built = subprocess.run(  # nosec B603 # fixed argv and no shell
        [binary, "-V"], capture_output=True, text=True, check=False
    ).stderr
    if "--with-stream=dynamic" not in built:
        return ""
    if not DEBIAN_STREAM_MODULE.is_file():
        raise MissingBinary(
            f"{DEBIAN_STREAM_MODULE} not found: install the Debian package"
            " 'libnginx-mod-stream' (apt-get install libnginx-mod-stream)"
        )
    return f"load_module {DEBIAN_STREAM_MODULE};\n"


class EdgeServer(ServiceProcess):
    """The edge on loopback `port` (free by default) in front of nginx on `nginx_port`.

    `overrides` replace edge.env values; the watcher resolves NGINX_UPSTREAM_HOST
    (loopback by default) under `watch_wrapper`, when given.
    """

    name = "edge"
    binary_name = "nginx"
    package = "nginx"
    start_timeout = 15.0

    def __init__(
        self,
        nginx_port: int,
        overrides: Mapping[str, str] | None = None,
        port: int | None = None,
        watch_wrapper: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.modules = stream_modules(self.binary)
        self.port = port or free_port()
        self.overrides = {
            "NGINX_EDGE_LISTEN": f"{LOOPBACK}:{self.port}",
            "NGINX_UPSTREAM_HOST": LOOPBACK,
            "NGINX_UPSTREAM_PORT": str(nginx_port),
            **(overrides or {}),
        }
        self.watch_wrapper = list(watch_wrapper)
        self.watcher: UpstreamWatch | None = None

    @property
    def url(self) -> str:
        """Base URL through the edge."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def prefix(self) -> Path:
        """The edge's folder: config, servers file, logs (while it runs)."""
        if self.folder is None:
            raise RuntimeError("the edge is not running: it has no prefix")
        return self.folder

    def nginx_argv(self, folder: Path) -> list[str]:
        """nginx on the edge's config, in the foreground, errors kept in `folder`."""
        return [
            self.binary, "-p", str(folder), "-c", str(folder / "nginx.conf"),
            "-e", str(folder / "logs" / "error.log"), "-g", "daemon off;",
        ]  # fmt: skip

    def prepare(self, folder: Path) -> None:
        write_local_edge_config(folder, self.overrides, self.modules)
        variables = edge_local_variables(folder, self.overrides)
        shell = find_binary("sh", "dash")
        written = subprocess.run(  # nosec B603 # fixed argv and no shell
            [*self.watch_wrapper, shell, str(UPSTREAM_WATCH), "once"],
            env=watch_environment(variables),
            capture_output=True,
            text=True,
            check=False,
        )
        if written.returncode != 0:
            raise StartFailed(f"upstream-watch.sh once: {written.stderr.strip()}")
        checked = subprocess.run(  # nosec B603 # fixed argv and no shell
            [*self.nginx_argv(folder), "-t"],
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            raise StartFailed(f"edge nginx -t failed: {checked.stderr.strip()}")

    def command(self, folder: Path) -> list[str]:
        return self.nginx_argv(folder)

    def ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> Self:
        """Start the edge, then its upstream watcher (reloading this edge)."""
        super().start()
        try:
            reload = [*self.nginx_argv(self.prefix), "-s", "reload"]
            variables = edge_local_variables(self.prefix, self.overrides)
            self.watcher = UpstreamWatch(variables, reload, self.watch_wrapper).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int:
        """Stop the watcher first (it must not reload a stopping edge), then nginx."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        return super().stop()
