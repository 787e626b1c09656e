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
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.wrk import WrkRun, run_wrk
from devstack import GunicornServer, NginxServer, RedisServer
from devstack.gunicorn import echo_server

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


class KeepaliveNginx(NginxServer):
    """The project's config with proxy_pass swapped for a keep-alive upstream block."""

    name = "nginx-keepalive"

    def render(self, folder: Path) -> None:
        super().render(folder)
        server = folder / "conf.d" / "default.conf"
        text = (
            server.read_text()
            .replace(
                "proxy_pass http://$prework_upstream;", "proxy_pass http://keepalive;"
            )
            .replace('Connection "close";', 'Connection "";')
        )
        upstream = self.variables["NGINX_UPSTREAM_PORT"]
        block = f"upstream keepalive {{ server 127.0.0.1:{upstream}; keepalive 32; }}"
        server.write_text(f"{block}\n{text}")


def load(port: int, path: str, seconds: int) -> WrkRun:
    """wrk against loopback `port` and `path`."""
    url = f"http://127.0.0.1:{port}{path}"
    return run_wrk(url, seconds=seconds, connections=CONNECTIONS, threads=THREADS)


def measure(label: str, upstream: int, path: str) -> list[Result]:
    """Direct, through the project's nginx and through the keep-alive variant.

    All three run at once and are measured in interleaved rounds, so a noisy
    neighbour on the shared machine hits each path alike; medians are reported.
    """
    with ExitStack() as stack:
        proxied = stack.enter_context(NginxServer(upstream, RAISED_LIMITS))
        keepalive = stack.enter_context(KeepaliveNginx(upstream, RAISED_LIMITS))
        ports = {
            f"{label}: direct": upstream,
            f"{label}: nginx as shipped (re-resolving)": proxied.port,
            f"{label}: nginx, upstream block + keepalive": keepalive.port,
        }
        samples: dict[str, list[WrkRun]] = {name: [] for name in ports}
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
        with RedisServer() as redis:
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
    with echo_server(threads=4) as echo:  # 2 workers x 4 threads, as gunicorn.conf.py
        results += measure("WSGI echo", echo.port, ECHO_PATH)
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
