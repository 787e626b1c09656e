"""Throughput and p99 latency of a GET straight to gunicorn versus through nginx.

The app's cached `GET /api/notes/<id>` (a Redis HIT) and, as the worst case for a
proxy, the tests' bare WSGI echo. One run, side by side, same machine, load from
Debian's `wrk` on loopback. The rate and connection limits are raised for the
measurement (a benchmark is one client). A third row measures the road not taken:
an `upstream` block with keep-alive (no re-resolution on nginx 1.22).
Run: `nox -s bench -- nginx`.
"""

from __future__ import annotations

import statistics
import subprocess  # nosec B404 # starts gunicorn, nginx and wrk
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # nginx/ and tests/ are not installed packages

from nginx.local import (  # noqa: E402
    find_binary,
    loopback_port,
    nginx_command,
    running_nginx,
    stop,
    temporary_prefix,
    wait_for_port,
)
from benchmarks.wrk import WrkRun, run_wrk  # noqa: E402
from nginx.render import write_local_config  # noqa: E402
from tests.nginx_standin_app import UPSTREAM_APP as ECHO_APP  # noqa: E402
from tests.nginx_standin_app import gunicorn_command  # noqa: E402
from tests.processes import GunicornServer, RedisServer  # noqa: E402

ECHO_PATH = "/api/notes/1"
CONNECTIONS, THREADS, SECONDS, WARMUP_SECONDS, ROUNDS = 32, 2, 5, 2, 5
RAISED_LIMITS = {
    "NGINX_RATE_LIMIT": "1000000r/s",
    "NGINX_RATE_BURST": "1000000",
    "NGINX_CONN_LIMIT": "10000",
}


@dataclass(frozen=True)
class Result:
    """One wrk measurement."""

    name: str
    requests_per_second: float
    p99_ms: float


@contextmanager
def running_gunicorn(app: str, port: int) -> Iterator[None]:
    """`app` under gunicorn, 2 workers x 4 threads like gunicorn.conf.py."""
    process = subprocess.Popen(  # nosec B603 # fixed argv
        gunicorn_command(port, app, workers=2, threads=4),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(process, port, "gunicorn")
        yield
    finally:
        stop(process)


@contextmanager
def running_keepalive_nginx(upstream_port: int, listen_port: int) -> Iterator[None]:
    """The project's config with proxy_pass swapped for a keep-alive upstream block."""
    variables = {
        "NGINX_LISTEN": f"127.0.0.1:{listen_port}",
        "NGINX_UPSTREAM_HOST": "127.0.0.1",
        "NGINX_UPSTREAM_PORT": str(upstream_port),
        "NGINX_RESOLVER": "127.0.0.1",
        **RAISED_LIMITS,
    }
    with temporary_prefix("nginx-keepalive") as prefix:
        config = write_local_config(prefix, variables)
        server = prefix / "conf.d" / "default.conf"
        text = (
            server.read_text()
            .replace(
                "proxy_pass http://$prework_upstream;", "proxy_pass http://keepalive;"
            )
            .replace('Connection "close";', 'Connection "";')
        )
        block = (
            f"upstream keepalive {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}"
        )
        server.write_text(f"{block}\n{text}")
        binary = find_binary("nginx", "nginx")
        process = subprocess.Popen(  # nosec B603 # fixed argv
            nginx_command(binary, config), stdin=subprocess.DEVNULL
        )
        try:
            wait_for_port(process, listen_port, "nginx (keep-alive variant)")
            yield
        finally:
            stop(process)


def distinct_ports(count: int, avoid: int) -> list[int]:
    """`count` different free loopback ports, none `avoid` (probes may repeat)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(loopback_port())
        ports.discard(avoid)
    return sorted(ports)


def load(port: int, path: str, seconds: int) -> WrkRun:
    """wrk against loopback `port` and `path`."""
    url = f"http://127.0.0.1:{port}{path}"
    return run_wrk(url, seconds=seconds, connections=CONNECTIONS, threads=THREADS)


def measure(label: str, upstream: int, path: str) -> list[Result]:
    """Direct, through the project's nginx and through the keep-alive variant.

    All three run at once and are measured in interleaved rounds, so a noisy
    neighbour on the shared machine hits each path alike; medians are reported.
    """
    proxied, keepalive = distinct_ports(2, avoid=upstream)
    ports = {
        f"{label}: direct": upstream,
        f"{label}: nginx as shipped (re-resolving)": proxied,
        f"{label}: nginx, upstream block + keepalive": keepalive,
    }
    samples: dict[str, list[WrkRun]] = {name: [] for name in ports}
    with ExitStack() as stack:
        stack.enter_context(running_nginx(upstream, proxied, RAISED_LIMITS))
        stack.enter_context(running_keepalive_nginx(upstream, keepalive))
        for port in ports.values():
            load(port, path, WARMUP_SECONDS)
        for _ in range(ROUNDS):
            for name, port in ports.items():
                samples[name].append(load(port, path, SECONDS))
    return [
        Result(
            name,
            statistics.median(run.rps for run in runs),
            statistics.median(run.p99_ms for run in runs),
        )
        for name, runs in samples.items()
    ]


def cached_note_path(base_url: str) -> str:
    """Create a note and read it twice; its path, now a Redis cache HIT."""
    created = requests.post(
        f"{base_url}/api/notes", json={"title": "bench", "body": "x" * 200}, timeout=10
    )
    created.raise_for_status()
    path = f"/api/notes/{created.json()['id']}"
    requests.get(f"{base_url}{path}", timeout=10).raise_for_status()
    cache = requests.get(f"{base_url}{path}", timeout=10).headers.get("X-Cache")
    if cache != "HIT":
        raise SystemExit(f"expected a cache HIT on {path}, got X-Cache: {cache}")
    return path


def main() -> None:
    """The real app's cached GET, then the bare echo, each direct and via nginx."""
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as folder:
        work = Path(folder)
        with RedisServer(work) as redis:
            settings = {
                "APP_ENV": "development",
                "LOG_LEVEL": "WARNING",
                "EMBEDDED_STORE_DIR": str(work / "db"),
                "REDIS_URL": redis.url,
                "CACHE_TTL_SECONDS": "3600",
            }
            with GunicornServer(settings, workers=2) as app_server:
                path = cached_note_path(app_server.url)
                results = measure("app, cached GET", app_server.port, path)
    echo_port = loopback_port()
    with running_gunicorn(ECHO_APP, echo_port):
        results += measure("WSGI echo", echo_port, ECHO_PATH)
    print(
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s --latency;"
        f" median of {ROUNDS} interleaved rounds"
    )
    print("| app: path | requests/s | p99 (ms) | vs direct |")
    print("| --- | ---: | ---: | ---: |")
    for index, result in enumerate(results):
        direct = results[index - index % 3].requests_per_second
        print(
            f"| {result.name} | {result.requests_per_second:,.0f}"
            f" | {result.p99_ms:.2f} | {result.requests_per_second / direct:.0%} |"
        )


if __name__ == "__main__":
    main()
