"""The stack's edge (nginx/templates/edge.conf.template) on loopback, in a prefix.

A TCP proxy in front of one or more nginx servers that listen with the PROXY protocol;
as in the stack, nginx/upstream-watch.sh runs beside it and keeps its servers file
equal to what NGINX_UPSTREAM_HOST resolves to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.commands import run
from devstack.binaries import MissingBinary
from devstack.nginx import WatchedNginx, write_servers
from devstack.ports import LOOPBACK
from nginx.render import edge_local_variables, write_local_edge_config

# Where Debian's libnginx-mod-stream puts the module; its nginx is built with
# `--with-stream=dynamic`. An nginx with the module built in needs no line.
DEBIAN_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def stream_modules(binary: str) -> str:
    """The `modules.conf` text this nginx needs for `stream`, or MissingBinary."""
    built = run([binary, "-V"], check=False).stderr
    if "--with-stream=dynamic" not in built:
        return ""
    if not DEBIAN_STREAM_MODULE.is_file():
        raise MissingBinary(
            f"{DEBIAN_STREAM_MODULE} not found: install the Debian package"
            " 'libnginx-mod-stream' (apt-get install libnginx-mod-stream)"
        )
    return f"load_module {DEBIAN_STREAM_MODULE};\n"


class EdgeServer(WatchedNginx):
    """The edge on loopback `port` (free by default) in front of nginx on `nginx_port`.

    `overrides` replace edge.env values; the watcher resolves NGINX_UPSTREAM_HOST
    (loopback by default) under `watch_wrapper`, when given.
    """

    name = "edge"

    def __init__(
        self,
        nginx_port: int,
        overrides: Mapping[str, str] | None = None,
        port: int | None = None,
        watch_wrapper: Sequence[str] = (),
    ) -> None:
        super().__init__(port, watch_wrapper)
        self.modules = stream_modules(self.binary)
        self.overrides = {
            "NGINX_EDGE_LISTEN": f"{LOOPBACK}:{self.port}",
            "NGINX_UPSTREAM_HOST": LOOPBACK,
            "NGINX_UPSTREAM_PORT": str(nginx_port),
            **(overrides or {}),
        }

    def nginx_argv(self, folder: Path) -> list[str]:
        """nginx on the edge's config, in the foreground."""
        return [*super().nginx_argv(folder), "-g", "daemon off;"]

    def render(self, folder: Path) -> None:
        write_local_edge_config(folder, self.overrides, self.modules)
        write_servers(edge_local_variables(folder, self.overrides), self.watch_wrapper)

    def watch_variables(self) -> Mapping[str, str]:
        return edge_local_variables(self.prefix, self.overrides)
