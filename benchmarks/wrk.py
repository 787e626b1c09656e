"""One run of wrk (Debian's HTTP load generator), read into figures."""

from __future__ import annotations

import re
import subprocess  # nosec B404 - runs wrk against loopback
from dataclasses import dataclass

from devstack import find_binary

UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkRun:
    """Requests per second and latency percentiles in ms."""

    rps: float
    p50_ms: float
    p99_ms: float


def run_wrk(url: str, *, seconds: int, connections: int, threads: int = 2) -> WrkRun:
    """Load `url` for `seconds`; SystemExit when wrk saw a failed response."""
    binary = find_binary("wrk", "wrk")
    output = subprocess.run(  # nosec B603 - fixed argv, loopback only
        [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw errors from {url}:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    return WrkRun(float(rate.group(1)), percentile(output, 50), percentile(output, 99))


def percentile(output: str, rank: int) -> float:
    """One line of wrk's --latency distribution, in ms."""
    found = re.search(rf"^\s+{rank}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if found is None:
        raise SystemExit(f"no {rank}% latency in wrk output:\n{output}")
    return float(found.group(1)) * UNITS_MS[found.group(2)]
