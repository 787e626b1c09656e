"""nginx from the project's template (nginx/render.py) on loopback, in a prefix.

As in the stack, nginx/upstream-watch.sh runs beside it and keeps the upstream
block's servers file equal to what NGINX_UPSTREAM_HOST resolves to.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 # only the type of run()'s result
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from devstack.binaries import find_binary
from devstack.commands import run
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess, StartFailed
from nginx.render import UPSTREAM_WATCH, local_variables, write_local_config

WATCH_SETTINGS = ("HOST", "PORT", "POLL", "SERVERS")


def local_overrides(upstream_port: int, listen_port: int) -> dict[str, str]:
    """Template variables that point the stack's config at loopback."""
    return {
        "NGINX_LISTEN": f"{LOOPBACK}:{listen_port}",
        "NGINX_UPSTREAM_HOST": LOOPBACK,
        "NGINX_UPSTREAM_PORT": str(upstream_port),
    }


def nginx_command(binary: str, config: Path) -> list[str]:
    """argv of nginx on `config`, with its start-up errors kept in the prefix."""
    prefix = config.parent
    error_log = prefix / "logs" / "error.log"
    return [binary, "-p", str(prefix), "-c", str(config), "-e", str(error_log)]


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on a rendered nginx.conf; the result carries nginx's own words."""
    binary = find_binary("nginx", "nginx")
    return run([*nginx_command(binary, config), "-t"], check=False)


def watch_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus the watcher's settings from `variables`."""
    environment = dict(os.environ)
    for name in WATCH_SETTINGS:
        environment[f"NGINX_UPSTREAM_{name}"] = variables[f"NGINX_UPSTREAM_{name}"]
    return environment


def write_servers(variables: Mapping[str, str], wrapper: Sequence[str] = ()) -> None:
    """The upstream servers file, written once before nginx starts, as the image's
    entrypoint hook does (upstream-watch.sh `once`, under `wrapper` when given)."""
    shell = find_binary("sh", "dash")
    written = run(
        [*wrapper, shell, str(UPSTREAM_WATCH), "once"],
        env=watch_environment(variables),
        check=False,
    )
    if written.returncode != 0:
        raise StartFailed(f"upstream-watch.sh once failed: {written.stderr.strip()}")


def write_config(
    prefix: Path,
    overrides: Mapping[str, str] | None = None,
    worker_processes: int = 1,
    wrapper: Sequence[str] = (),
) -> Path:
    """nginx.conf rendered into `prefix` and its upstream servers file; nginx.conf's
    path. `wrapper` goes in front of the watcher (a test runs it with its own
    /etc/hosts)."""
    config = write_local_config(prefix, overrides, worker_processes)
    write_servers(local_variables(prefix, overrides), wrapper)
    return config


class UpstreamWatch(ServiceProcess):
    """nginx/upstream-watch.sh polling the upstream host; `reload` on a change."""

    name = "upstream-watch"
    binary_name = "sh"
    package = "dash"

    def __init__(
        self,
        variables: Mapping[str, str],
        reload: Sequence[str],
        wrapper: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.variables = dict(variables)
        self.reload = list(reload)
        self.wrapper = list(wrapper)

    def command(self, folder: Path) -> list[str]:
        script = str(UPSTREAM_WATCH)
        return [*self.wrapper, self.binary, script, "watch", *self.reload]

    def environment(self) -> dict[str, str]:
        return watch_environment(self.variables)

    def ready(self) -> bool:
        return True  # it polls from the start; the servers file is already written


class WatchedNginx(ServiceProcess):
    """nginx on a loopback port (free by default) with upstream-watch.sh beside it,
    keeping its upstream servers file current and reloading it, as in the stack.

    A subclass renders its config (`render`) and names the watcher's settings
    (`watch_variables`); the watcher runs under `watch_wrapper`, when given.
    """

    binary_name = "nginx"
    package = "nginx"
    start_timeout = 15.0

    def __init__(
        self, port: int | None, watch_wrapper: Sequence[str], watch: bool = True
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.watch_wrapper = list(watch_wrapper)
        self.watch = watch
        self.watcher: UpstreamWatch | None = None

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def prefix(self) -> Path:
        """nginx's prefix: its config, logs and temp files (while it runs)."""
        if self.folder is None:
            raise RuntimeError(f"{self.name} is not running: it has no prefix")
        return self.folder

    def nginx_argv(self, folder: Path) -> list[str]:
        """nginx on the prefix's nginx.conf."""
        return nginx_command(self.binary, folder / "nginx.conf")

    def render(self, folder: Path) -> None:
        """Write nginx.conf and the servers file into `folder`."""
        raise NotImplementedError

    def watch_variables(self) -> Mapping[str, str]:
        """The rendered settings the watcher reads (NGINX_UPSTREAM_*)."""
        raise NotImplementedError

    def prepare(self, folder: Path) -> None:
        self.render(folder)
        checked = run([*self.nginx_argv(folder), "-t"], check=False)
        if checked.returncode != 0:
            raise StartFailed(f"{self.name} -t failed: {checked.stderr.strip()}")

    def command(self, folder: Path) -> list[str]:
        return self.nginx_argv(folder)

    def ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> Self:
        """Start nginx, then its upstream watcher (reloading this nginx)."""
        super().start()
        if self.watch:
            try:
                reload = [*self.nginx_argv(self.prefix), "-s", "reload"]
                watcher = UpstreamWatch(
                    self.watch_variables(), reload, self.watch_wrapper
                )
                self.watcher = watcher.start()
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> int:
        """Stop the watcher first (it must not reload a stopping nginx), then nginx."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        return super().stop()


class NginxServer(WatchedNginx):
    """nginx on loopback `port` (free by default) in front of loopback `upstream_port`.

    `overrides` replace template.env values (e.g. a small rate for a test). A subclass
    may edit the rendered files in `render` before `nginx -t` runs. The upstream
    watcher runs beside it (under `watch_wrapper`, when given) unless `watch` is False.
    """

    name = "nginx"

    def __init__(
        self,
        upstream_port: int,
        overrides: Mapping[str, str] | None = None,
        port: int | None = None,
        worker_processes: int = 1,
        watch_wrapper: Sequence[str] = (),
        watch: bool = True,
    ) -> None:
        super().__init__(port, watch_wrapper, watch)
        self.variables = local_overrides(upstream_port, self.port)
        self.variables.update(overrides or {})
        self.worker_processes = worker_processes

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
        """Write nginx.conf, conf.d/ and the servers file (a subclass may edit them)."""
        write_config(folder, self.variables, self.worker_processes, self.watch_wrapper)

    def watch_variables(self) -> Mapping[str, str]:
        return local_variables(self.prefix, self.variables)
