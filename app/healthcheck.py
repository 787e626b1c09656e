"""The container's health check (`python -m app.healthcheck`): ready once, then live.

Swarm lists a replica in the service's DNS name, which nginx's upstream follows, only
once its health check has passed, and a rolling update replaces the next replica only
then. So until the replica's first 200 from `/readyz` this check asks `/readyz`: a
replica that cannot reach its store at start never gets a request, turns unhealthy,
and Swarm rolls the update back before it replaced a ready replica (docs/SWARM.md,
"Health"). From then on it asks `/healthz` alone (liveness): a store outage later
would fail every replica's readiness at once, and restarting them all brings no store
back. Like Kubernetes's startup probe followed by a liveness probe.

Exit 0 healthy, 1 not, as Docker's HEALTHCHECK reads it; the standard library only.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

# Per container: the stack's /tmp is a tmpfs, so a new container starts without it.
READY_ONCE = Path("/tmp/prework-ready-once")  # nosec B108 - the container's own tmpfs
BASE_URL = "http://127.0.0.1:8000"
# Below the HEALTHCHECK's timeout, above /readyz's slowest honest answer (the store's
# 2 s timeout, plus a Redis ping during a Redis outage).
TIMEOUT = 4.0


def answers_200(url: str, timeout: float) -> bool:
    """True when `url` answers 200 within `timeout`."""
    try:
        with urllib.request.urlopen(  # nosec B310 - a loopback http URL of our own
            url, timeout=timeout
        ) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def healthy(base: str, marker: Path, timeout: float = TIMEOUT) -> bool:
    """Live once `marker` says the replica was ready; until then, ready now (and the
    marker is written)."""
    if marker.exists():
        return answers_200(f"{base}/healthz", timeout)
    if not answers_200(f"{base}/readyz", timeout):
        return False
    try:
        marker.touch()
    except OSError:
        pass  # asked again at the next check: still healthy now
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.healthcheck",
        description="Exit 0 when the replica is healthy: ready once, then live.",
    )
    parser.add_argument("--url", default=BASE_URL, help="the replica's base URL")
    parser.add_argument("--marker", type=Path, default=READY_ONCE)
    args = parser.parse_args(argv)
    return 0 if healthy(args.url.rstrip("/"), args.marker) else 1


if __name__ == "__main__":
    sys.exit(main())
