"""Throughput and p99 latency of a GET straight to gunicorn versus through nginx.

The app's cached `GET /api/notes/<id>` (a Redis HIT) and, as the worst case for a
proxy, the tests' bare WSGI echo. One run, side by side, same machine, load from
Debian's `wrk` on loopback. The rate and connection limits are raised for the
measurement (a benchmark is one client). Besides the shipped config (upstream
keep-alive, servers kept current by nginx/upstream-watch.sh) two variants of it run:
the upper bound (a fixed upstream, access log buffered) and the previous config's
cost (a new connection to gunicorn per request, as a variable `proxy_pass` needs).
Run: `nox -s bench -- nginx`.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.wrk import WrkRun, run_wrk
from devstack import GunicornServer, NginxServer, RedisServer
from devstack.gunicorn import echo_server

ECHO_PATH = "/api/notes/1"
CONNECTIONS, THREADS, SECONDS, WARMUP_SECONDS, ROUNDS = 32, 2, 3, 2, 9
RAISED_LIMITS = {
    "NGINX_RATE_LIMIT": "1000000r/s",
    "NGINX_RATE_BURST": "1000000",
    "NGINX_CONN_LIMIT": "10000",
}


@dataclass(frozen=True)
class Result:
    """One target's medians over the rounds."""

    name: str
    requests_per_second: float
    p99_ms: float
    # Medians of the per-round ratios: each round's runs are minutes apart at most.
    vs_direct: float
    vs_upper_bound: float


class VariantNginx(NginxServer):
    """The shipped config, its server file changed by `edit`; no watcher."""

    def __init__(self, upstream_port: int, edit: Callable[[str, int], str]) -> None:
        super().__init__(upstream_port, RAISED_LIMITS, watch=False)
        self.edit = edit
        self.name = f"nginx-{edit.__name__}"

    def render(self, folder: Path) -> None:
        super().render(folder)
        server = folder / "conf.d" / "default.conf"
        shipped = server.read_text()
        edited = self.edit(shipped, int(self.variables["NGINX_UPSTREAM_PORT"]))
        if edited == shipped:
            raise SystemExit(f"{self.name}: the template no longer matches")
        server.write_text(edited)


def upper_bound(server: str, upstream_port: int) -> str:
    """A fixed upstream server instead of the watched file; the access log buffered."""
    fixed = f"server 127.0.0.1:{upstream_port};"
    text = re.sub(r"include \S+\.servers;", fixed, server)
    return re.sub(r"(access_log \S+ prework_json);", r"\1 buffer=64k flush=1s;", text)


def per_request_connection(server: str, upstream_port: int) -> str:
    """The previous config: no upstream block, `Connection: close` to gunicorn."""
    return server.replace(
        "proxy_pass http://prework_web;",
        f"proxy_pass http://127.0.0.1:{upstream_port};",
    ).replace('proxy_set_header Connection "";', 'proxy_set_header Connection "close";')


def load(port: int, path: str, seconds: int) -> WrkRun:
    """wrk against loopback `port` and `path`."""
    url = f"http://127.0.0.1:{port}{path}"
    return run_wrk(url, seconds=seconds, connections=CONNECTIONS, threads=THREADS)


def measure(label: str, upstream: int, path: str) -> list[Result]:
    """Direct, through the shipped nginx and through its two variants.

    All run at once and are measured in interleaved rounds, each in a new random
    order, so a noisy neighbour on the shared machine hits each path alike. Reported:
    medians, and the median of each round's ratios (paired runs, seconds apart).
    """
    with ExitStack() as stack:
        shipped = stack.enter_context(NginxServer(upstream, RAISED_LIMITS))
        best = stack.enter_context(VariantNginx(upstream, upper_bound))
        previous = stack.enter_context(VariantNginx(upstream, per_request_connection))
        ports = {
            f"{label}: direct": upstream,
            f"{label}: nginx as shipped (keep-alive, watched servers)": shipped.port,
            f"{label}: upper bound (fixed upstream, buffered log)": best.port,
            f"{label}: new connection per request (previous config)": previous.port,
        }
        samples: dict[str, list[WrkRun]] = {name: [] for name in ports}
        direct_name, _, best_name, _ = ports
        order = random.Random(label)  # nosec B311 # the order of runs, not a secret
        for port in ports.values():
            load(port, path, WARMUP_SECONDS)
        for _ in range(ROUNDS):
            for name in order.sample(list(ports), len(ports)):
                samples[name].append(load(ports[name], path, SECONDS))
    return [
        Result(
            name,
            statistics.median(run.rps for run in runs),
            statistics.median(run.p99_ms for run in runs),
            paired_ratio(runs, samples[direct_name]),
            paired_ratio(runs, samples[best_name]),
        )
        for name, runs in samples.items()
    ]


def paired_ratio(runs: list[WrkRun], baseline: list[WrkRun]) -> float:
    """Median over the rounds of runs[i] / baseline[i] in requests per second."""
    return statistics.median(run.rps / base.rps for run, base in zip(runs, baseline))


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
        f" medians of {ROUNDS} interleaved rounds; ratios are medians of each"
        " round's ratios"
    )
    print("| app: path | requests/s | p99 (ms) | vs direct | vs upper bound |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for result in results:
        print(
            f"| {result.name} | {result.requests_per_second:,.0f}"
            f" | {result.p99_ms:.2f} | {result.vs_direct:.1%}"
            f" | {result.vs_upper_bound:.1%} |"
        )


if __name__ == "__main__":
    main()
