"""Benchmark (not a test): GET /api/notes/<id> with a cache HIT, a MISS, and /healthz;
POST /api/notes with and without an Idempotency-Key.

gunicorn (gunicorn.conf.py defaults) on loopback with the embedded store; one server
with Redis (HIT, /healthz), one without (MISS: every read goes to the store). wrk
loads each in turn, for several rounds, and the medians of the rounds are compared.
Then the ETag's own cost: the cached GET handled in this process (Flask's test client,
the same Redis) with the ETag code and with it replaced by the plain response it
replaced, in interleaved rounds, in CPU time per request (steadier than throughput on
a shared machine), and the ETag code alone. Last, POSTs in process without and with
an Idempotency-Key, interleaved rounds. Run: `nox -s bench -- app`.

With BENCH_BASELINE=REF (a git ref, e.g. `main`), a third server runs REF's app from
`git archive` with the same Redis, and its cached GET is measured in the same rounds:
the figures of a change side by side with the code before it, with the paired ratio
per round.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess  # nosec B404 # git archive of a fixed ref, for the baseline
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import flask
import requests
from flask import Request, Response

from app import notes_routes, versions
from benchmarks.wrk import WrkRun, run_wrk
from app.factory import create_app
from devstack import GunicornServer, RedisServer
from devstack.gunicorn import ROOT

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
SEED_NOTES = 100
BASELINE = os.environ.get("BENCH_BASELINE", "")


class CheckoutGunicorn(GunicornServer):
    """gunicorn serving the app of another checkout (its own gunicorn.conf.py)."""

    def __init__(self, checkout: Path, env: Mapping[str, str], log: Path) -> None:
        super().__init__(env, workers=2, log_path=log)
        self.checkout = checkout
        self.config = checkout / "gunicorn.conf.py"

    def workdir(self, folder: Path) -> Path:
        # gunicorn puts its working directory first on sys.path: `app` is this one.
        return self.checkout


def export_ref(ref: str, into: Path) -> Path:
    """The files of git ref `ref` of this repository, in `into`."""
    archive = into / "baseline.tar"
    subprocess.run(  # nosec B603 B607 # git from PATH, fixed argv
        ["git", "archive", "--format=tar", f"--output={archive}", ref],
        cwd=ROOT,
        check=True,
    )
    checkout = into / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(checkout, filter="data")
    return checkout


def seeded_note(base_url: str) -> str:
    """Create SEED_NOTES notes; the id of one in the middle."""
    ids = []
    with requests.Session() as session:
        for index in range(SEED_NOTES):
            response = session.post(
                f"{base_url}/api/notes",
                json={"title": f"note {index}", "body": "x" * 200, "tags": ["bench"]},
                timeout=10,
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
    return str(ids[SEED_NOTES // 2])


def median(runs: list[WrkRun]) -> WrkRun:
    """The median of each figure over the rounds."""
    return WrkRun(
        statistics.median(run.rps for run in runs),
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
    )


def machine() -> str:
    """CPU model, core count and Python version."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1) if found else model
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def measure(work: Path) -> dict[str, WrkRun]:
    """Start both servers, seed them, and run every target ROUNDS times."""
    quiet = {"APP_ENV": "development", "LOG_LEVEL": "WARNING"}
    with RedisServer() as redis:
        cached = GunicornServer(
            {
                **quiet,
                "EMBEDDED_STORE_DIR": str(work / "cached-db"),
                "REDIS_URL": redis.url,
                "CACHE_TTL_SECONDS": "3600",
            },
            workers=2,
            log_path=work / "cached.log",
        )
        uncached = GunicornServer(
            {**quiet, "EMBEDDED_STORE_DIR": str(work / "uncached-db")},
            workers=2,
            log_path=work / "uncached.log",
        )
        with cached, uncached, ExitStack() as stack:
            hit_id, miss_id = seeded_note(cached.url), seeded_note(uncached.url)
            targets = {
                "healthz": f"{cached.url}/healthz",
                "hit": f"{cached.url}/api/notes/{hit_id}",
                "miss": f"{uncached.url}/api/notes/{miss_id}",
            }
            servers = {"healthz": cached, "hit": cached, "miss": uncached}
            if BASELINE:
                baseline = stack.enter_context(
                    CheckoutGunicorn(
                        export_ref(BASELINE, work),
                        {
                            **quiet,
                            "EMBEDDED_STORE_DIR": str(work / "baseline-db"),
                            "REDIS_URL": redis.url,
                            "CACHE_TTL_SECONDS": "3600",
                        },
                        work / "baseline.log",
                    )
                )
                base_id = seeded_note(baseline.url)
                targets["baseline"] = f"{baseline.url}/api/notes/{base_id}"
                servers["baseline"] = baseline
                assert requests.get(targets["baseline"], timeout=5).ok
            assert requests.get(targets["hit"], timeout=5).ok  # warms the cache
            hit = requests.get(targets["hit"], timeout=5).headers["X-Cache"]
            miss = requests.get(targets["miss"], timeout=5).headers["X-Cache"]
            assert (hit, miss) == ("HIT", "BYPASS"), (hit, miss)
            runs: dict[str, list[WrkRun]] = {name: [] for name in targets}
            for _ in range(ROUNDS):
                for name, url in targets.items():
                    server = servers[name]
                    spent = server_cpu_seconds(server)
                    run = run_wrk(url, seconds=SECONDS, connections=CONNECTIONS)
                    spent = server_cpu_seconds(server) - spent
                    runs[name].append(run)
                    CPU_US[name].append(spent / (run.rps * SECONDS) * 1e6)
    RUNS.update(runs)
    return {name: median(found) for name, found in runs.items()}


# Every round's figures, for the paired comparison with the baseline.
RUNS: dict[str, list[WrkRun]] = {}
# CPU microseconds the server (master and workers) spent per request, every round.
CPU_US: dict[str, list[float]] = defaultdict(list)


def server_cpu_seconds(server: GunicornServer) -> float:
    """User + system CPU seconds of a gunicorn master and its workers so far."""
    assert server.process is not None
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in [master, *map(int, children)]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def print_baseline_comparison() -> None:
    """The cached GET of BASELINE against this checkout's: medians and the median of
    the per-round ratios (rounds interleave the targets, so pairs share conditions)."""
    before, after = RUNS["baseline"], RUNS["hit"]
    pairs = list(zip(before, after, strict=True))
    ratios = [new.rps / old.rps for old, new in pairs]
    p50_ratios = [new.p50_ms / old.p50_ms for old, new in pairs]
    print(f"\ncached GET, {BASELINE} vs this checkout, {len(ratios)} paired rounds:")
    print("| code | requests/s (median) | p50 ms (median) |")
    print("| --- | ---: | ---: |")
    for label, runs in ((BASELINE, before), ("this checkout", after)):
        summary = median(runs)
        print(f"| {label} | {summary.rps:.0f} | {summary.p50_ms:.2f} |")
    print(
        f"paired throughput ratio (this / {BASELINE}): median "
        f"{statistics.median(ratios):.3f}, "
        f"rounds {[round(r, 3) for r in ratios]}"
    )
    cpu = [new / old for old, new in zip(CPU_US["baseline"], CPU_US["hit"])]
    print(
        f"server CPU per request: {BASELINE} "
        f"{statistics.median(CPU_US['baseline']):.0f} us, this checkout "
        f"{statistics.median(CPU_US['hit']):.0f} us (medians); paired ratio median "
        f"{statistics.median(cpu):.3f}, rounds {[round(r, 3) for r in cpu]}"
    )
    print(
        f"paired p50 ratio (this / {BASELINE}): median "
        f"{statistics.median(p50_ratios):.3f}, "
        f"rounds {[round(r, 3) for r in p50_ratios]}"
    )


ETAG_REQUESTS = int(os.environ.get("BENCH_ETAG_REQUESTS", "2000"))


def plain_note_response(body: bytes, status: int = 200) -> Response:
    """What a note response was before ETags: the bytes, no ETag or Cache-Control."""
    return Response(body, status=status, mimetype="application/json")


def never_modified(request: Request, body: bytes) -> bool:
    return False


@contextmanager
def without_etags(enabled: bool) -> Iterator[None]:
    """The notes routes with their ETag code replaced by what it replaced."""
    if not enabled:
        yield
        return
    with mock.patch.object(notes_routes, "note_response", plain_note_response):
        with mock.patch.object(notes_routes, "not_modified", never_modified):
            yield


def etag_cost(redis_url: str, work: Path) -> dict[str, list[float]]:
    """CPU microseconds per cached GET, with and without the ETag code, per round."""
    app = create_app(
        {
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url,
            "CACHE_TTL_SECONDS": "3600",
            "EMBEDDED_STORE_DIR": str(work / "etag-db"),
        }
    )
    client = app.test_client()
    created = client.post("/api/notes", json={"title": "etag", "body": "x" * 200})
    url = created.headers["Location"]
    client.get(url)
    assert client.get(url).headers["X-Cache"] == "HIT"
    rounds: dict[str, list[float]] = {"with": [], "without": [], "alone": []}
    body = client.get(url).data
    with app.test_request_context(url, headers={"If-None-Match": '"x"'}):
        for _ in range(2 * ROUNDS):
            rounds["alone"].append(etag_code_alone(body))
    for number in range(2 * ROUNDS):
        order = ["with", "without"] if number % 2 == 0 else ["without", "with"]
        for name in order:
            with without_etags(name == "without"):
                started = time.process_time()
                for _ in range(ETAG_REQUESTS):
                    client.get(url)
                spent = time.process_time() - started
            rounds[name].append(spent / ETAG_REQUESTS * 1e6)
    return rounds


def etag_code_alone(body: bytes) -> float:
    """CPU microseconds of the ETag code a cached GET runs, minus the plain response
    it replaced (in a request context that sends If-None-Match)."""
    request = flask.request
    started = time.process_time()
    for _ in range(ETAG_REQUESTS):
        response = versions.note_response(body)
        versions.not_modified(request, body)
    with_etag = time.process_time() - started
    started = time.process_time()
    for _ in range(ETAG_REQUESTS):
        response = plain_note_response(body)
    plain = time.process_time() - started
    assert response.status_code == 200
    return (with_etag - plain) / ETAG_REQUESTS * 1e6


def print_etag_cost(rounds: dict[str, list[float]]) -> None:
    """Medians and the paired ratio of the ETag's cost."""
    ratios = [new / old for new, old in zip(rounds["with"], rounds["without"])]
    print(
        f"\nETag cost on a cached GET, in process (Flask test client, Redis HIT), "
        f"{len(ratios)} interleaved rounds of {ETAG_REQUESTS} requests, CPU time:"
    )
    print("| code | CPU us per request (median) |")
    print("| --- | ---: |")
    for name in ("without", "with"):
        print(f"| {name} the ETag | {statistics.median(rounds[name]):.1f} |")
    alone = statistics.median(rounds["alone"])
    share = alone / statistics.median(rounds["without"])
    print(
        f"the ETag code alone (digest, header, If-None-Match), median of "
        f"{len(rounds['alone'])} rounds: {alone:.1f} us, {share:.2%} of a cached GET"
    )
    print(
        f"paired ratio with / without: median {statistics.median(ratios):.3f}, "
        f"rounds {[round(ratio, 3) for ratio in ratios]} (goal < 1.05)"
    )


KEY_REQUESTS = int(os.environ.get("BENCH_KEY_REQUESTS", "200"))


def key_cost(work: Path) -> dict[str, list[float]]:
    """Milliseconds per POST /api/notes without and with an Idempotency-Key (a new
    one each), in process on the embedded store, interleaved rounds (wall time: the
    key's cost is store writes, not CPU)."""
    app = create_app(
        {
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "EMBEDDED_STORE_DIR": str(work / "key-db"),
        }
    )
    client = app.test_client()
    note = {"title": "keyed", "body": "x" * 200, "tags": ["bench"]}
    rounds: dict[str, list[float]] = {"without": [], "with": []}
    keys = iter(range(1 << 30))
    for number in range(2 * ROUNDS):
        order = ["with", "without"] if number % 2 == 0 else ["without", "with"]
        for name in order:
            started = time.perf_counter()
            for _ in range(KEY_REQUESTS):
                headers = (
                    {"Idempotency-Key": f"k-{next(keys)}"} if name == "with" else {}
                )
                response = client.post("/api/notes", json=note, headers=headers)
                assert response.status_code == 201, response.json
            spent = time.perf_counter() - started
            rounds[name].append(spent / KEY_REQUESTS * 1e3)
    return rounds


def print_key_cost(rounds: dict[str, list[float]]) -> None:
    """Medians and the paired ratio of the Idempotency-Key's cost on a POST."""
    ratios = [new / old for new, old in zip(rounds["with"], rounds["without"])]
    print(
        f"\nIdempotency-Key cost on POST /api/notes, in process (Flask test client, "
        f"embedded store), {len(ratios)} interleaved rounds of {KEY_REQUESTS} "
        "requests, wall time:"
    )
    print("| POST | ms per request (median) |")
    print("| --- | ---: |")
    for name in ("without", "with"):
        print(f"| {name} a key | {statistics.median(rounds[name]):.2f} |")
    print(
        f"paired ratio with / without: median {statistics.median(ratios):.2f}, "
        f"rounds {[round(ratio, 2) for ratio in ratios]}"
    )


def main() -> int:
    """Run the benchmark and print the figures as a Markdown table."""
    for binary, package in (("wrk", "wrk"), ("redis-server", "redis-server")):
        if shutil.which(binary) is None:
            print(
                f"bench_app skipped: {binary} not found; install the Debian package "
                f"{package!r} (apt-get install -y {package})"
            )
            return 0
    with tempfile.TemporaryDirectory(prefix="bench-app-") as work:
        results = measure(Path(work))
        with RedisServer() as redis:
            etag_rounds = etag_cost(redis.url, Path(work))
        key_rounds = key_cost(Path(work))
    hit, miss, ceiling = results["hit"], results["miss"], results["healthz"]
    print(f"\nmachine: {machine()}")
    print(
        f"wrk -t2 -c{CONNECTIONS} -d{SECONDS}s --latency, median of {ROUNDS} rounds; "
        f"gunicorn 2 workers x 4 threads; embedded store with {SEED_NOTES} notes\n"
    )
    print("| target | requests/s | p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    labels = {
        "hit": "`GET /api/notes/<id>` cache HIT (Redis)",
        "miss": "`GET /api/notes/<id>` MISS (cache off, embedded store)",
        "healthz": "`GET /healthz` (ceiling)",
    }
    for name in ("hit", "miss", "healthz"):
        run = results[name]
        print(
            f"| {labels[name]} | {run.rps:.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} |"
        )
    print(f"\nHIT / MISS throughput: {hit.rps / miss.rps:.1f}x (goal >= 3x)")
    print(f"HIT / healthz throughput: {hit.rps / ceiling.rps:.0%} (goal >= 70 %)")
    if BASELINE:
        print_baseline_comparison()
    print_etag_cost(etag_rounds)
    print_key_cost(key_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
