"""Run the proxy locally: a real nginx from the project's template, plus redis-server.

Everything listens on loopback and lives in a temporary prefix that is removed on exit.
Tests and `nox -s serve -- --proxy` use the context managers; `python -m nginx.local`
runs the proxy in front of an app that is already listening, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess  # nosec B404 # starts the nginx and redis-server binaries
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nginx.render import UPSTREAM_WATCH, local_variables, write_local_config

LOOPBACK = "127.0.0.1"
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class MissingBinary(RuntimeError):
    """A service binary is not installed; the message names the Debian package."""


class StartFailed(RuntimeError):
    """A service exited or never listened; the message carries its own words."""


@dataclass(frozen=True)
class LocalNginx:
    """A running local nginx: where it listens and where its files are."""

    port: int
    prefix: Path
    config: Path

    @property
    def url(self) -> str:
        """Base URL of the proxy."""
        return f"http://{LOOPBACK}:{self.port}"

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


@dataclass(frozen=True)
class LocalStack:
    """nginx in front of `upstream_port`, and a Redis URL when redis-server exists."""

    nginx: LocalNginx
    redis_url: str | None


def find_binary(name: str, package: str) -> str:
    """Path of executable `name`, or MissingBinary naming the package to install."""
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN_DIRS if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if path is None:
        raise MissingBinary(
            f"{name} not found: install the Debian package {package!r}"
            f" (apt-get install {package})"
        )
    return path


def loopback_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


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
    return subprocess.run(  # nosec B603 # fixed argv, no shell
        [*nginx_command(binary, config), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on loopback `port`."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    """Return once `port` accepts connections; StartFailed if `process` exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(f"{what} exited with status {process.returncode}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise StartFailed(f"{what} did not listen on port {port} in {START_TIMEOUT}s")


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM `process`, wait up to `timeout`, then SIGKILL; its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def temporary_prefix(name: str) -> Iterator[Path]:
    """A temporary folder that nginx's unprivileged workers can traverse."""
    prefix = Path(tempfile.mkdtemp(prefix=f"prework-{name}-"))
    try:
        # Workers run as `nobody` when the master is root; nginx chowns its temp
        # folders to that user, which only helps if it can reach them.
        prefix.chmod(0o711)
        yield prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def upstream_watch(
    mode: str, variables: Mapping[str, str], wrapper: Sequence[str], *command: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of nginx/upstream-watch.sh in `mode`, as the image runs it.

    `wrapper` goes in front (a test runs it where its own hosts file is /etc/hosts).
    """
    shell = find_binary("sh", "dash")
    names = ("HOST", "PORT", "POLL", "SERVERS")
    environment = dict(os.environ)
    for name in names:
        environment[f"NGINX_UPSTREAM_{name}"] = variables[f"NGINX_UPSTREAM_{name}"]
    return [*wrapper, shell, str(UPSTREAM_WATCH), mode, *command], environment


def write_config(
    prefix: Path,
    variables: Mapping[str, str] | None = None,
    worker_processes: int = 1,
    wrapper: Sequence[str] = (),
) -> Path:
    """The rendered nginx.conf in `prefix` and, as the image's hook writes it at start,
    the upstream servers file for what the upstream host resolves to now."""
    config = write_local_config(prefix, variables, worker_processes)
    argv, environment = upstream_watch(
        "once", local_variables(prefix, variables), wrapper
    )
    written = subprocess.run(  # nosec B603 # fixed argv, no shell
        argv, env=environment, capture_output=True, text=True, check=False
    )
    if written.returncode != 0:
        raise StartFailed(f"upstream-watch.sh once failed: {written.stderr.strip()}")
    return config


@contextmanager
def running_upstream_watch(
    variables: Mapping[str, str], reload: Sequence[str], wrapper: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx/upstream-watch.sh polling the upstream host; `reload` on a change."""
    argv, environment = upstream_watch("watch", variables, wrapper, *reload)
    process = subprocess.Popen(  # nosec B603 # fixed argv, no shell
        argv, env=environment, stdin=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def running_nginx(
    upstream_port: int,
    listen_port: int,
    overrides: Mapping[str, str] | None = None,
    worker_processes: int = 1,
    watch_wrapper: Sequence[str] = (),
) -> Iterator[LocalNginx]:
    """nginx on loopback `listen_port` in front of loopback `upstream_port`.

    `overrides` replace template.env values (e.g. a small rate for a test). As in the
    stack, nginx/upstream-watch.sh keeps the upstream servers current (under
    `watch_wrapper`, when given).
    """
    binary = find_binary("nginx", "nginx")
    variables = local_overrides(upstream_port, listen_port)
    variables.update(overrides or {})
    with temporary_prefix("nginx") as prefix, ExitStack() as running:
        config = write_config(prefix, variables, worker_processes, watch_wrapper)
        checked = check_config(config)
        if checked.returncode != 0:
            raise StartFailed(f"nginx -t failed: {checked.stderr.strip()}")
        process = subprocess.Popen(  # nosec B603 # fixed argv, no shell
            nginx_command(binary, config), stdin=subprocess.DEVNULL
        )
        running.callback(stop, process)
        wait_for_port(process, listen_port, "nginx")
        reload = [*nginx_command(binary, config), "-s", "reload"]
        running.enter_context(
            running_upstream_watch(
                local_variables(prefix, variables), reload, watch_wrapper
            )
        )
        yield LocalNginx(port=listen_port, prefix=prefix, config=config)


@contextmanager
def running_redis(port: int | None = None) -> Iterator[str | None]:
    """A throwaway redis-server on loopback; its URL, or None when not installed."""
    try:
        binary = find_binary("redis-server", "redis-server")
    except MissingBinary:
        yield None
        return
    port = port or loopback_port()
    with temporary_prefix("redis") as folder:
        process = subprocess.Popen(  # nosec B603 # fixed argv, no shell
            [binary, "--bind", LOOPBACK, "--port", str(port), "--dir", str(folder)]
            + ["--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # its banner; warnings go there too
        )
        try:
            wait_for_port(process, port, "redis-server")
            yield f"redis://{LOOPBACK}:{port}/0"
        finally:
            stop(process)


@contextmanager
def running_local_stack(
    upstream_port: int,
    listen_port: int,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[LocalStack]:
    """nginx in front of the app's port, and redis-server for its cache if installed."""
    with ExitStack() as stack:
        nginx = stack.enter_context(
            running_nginx(upstream_port, listen_port, overrides)
        )
        redis_url = stack.enter_context(running_redis())
        yield LocalStack(nginx=nginx, redis_url=redis_url)


def check_stack_config() -> int:
    """`nginx -t` on the template rendered with the stack defaults; its exit code."""
    with temporary_prefix("nginx-t") as prefix:
        result = check_config(write_config(prefix))
    print(result.stderr.strip().replace(str(prefix), "<prefix>"), file=sys.stderr)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    """Run the local proxy in front of an app that listens on --upstream-port."""
    parser = argparse.ArgumentParser(
        prog="python -m nginx.local", description=main.__doc__
    )
    parser.add_argument("--upstream-port", type=int, default=8000)
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PREWORK_HTTP_PORT", "8080"))
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only run `nginx -t` on the config rendered with nginx/template.env",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check_stack_config()
        with running_local_stack(args.upstream_port, args.port) as local:
            print(f"nginx on {local.nginx.url} -> 127.0.0.1:{args.upstream_port}")
            print(f"access log: {local.nginx.access_log}")
            print(f"redis: {local.redis_url or 'not installed (redis-server)'}")
            while True:
                time.sleep(3600)
    except (MissingBinary, StartFailed) as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
