"""Proof through nginx that every replica of the web service is ready at one version.

`/readyz` answers 200 only when the replica's store answers, and names the replica
(hostname) and its version; nginx spreads the requests over the replicas. A replica is
verified once it answered 200 with the version; one that cannot reach its store never
does (nginx may hand its 503 on to another replica, which then answers for itself).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin

# Below nginx's per-IP rate limit (20 r/s), so verification is never throttled.
REQUEST_INTERVAL = 0.1


@dataclass(frozen=True)
class Answer:
    """What one `/readyz` request said: status, replica, version."""

    status: int
    hostname: str
    version: str


def readyz_url(url: str) -> str:
    """The `/readyz` URL under the stack's base URL (a path prefix is kept)."""
    return urljoin(url if url.endswith("/") else url + "/", "readyz")


# Above nginx's retry budget (proxy_next_upstream_timeout 10s): when every replica it
# tries is unready, its last 503 still arrives and names a replica.
FETCH_TIMEOUT = 12.0


def fetch_readiness(url: str, timeout: float = FETCH_TIMEOUT) -> Answer | None:
    """One GET of `url`; None unless it answers JSON naming a replica."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        response = urllib.request.urlopen(  # nosec B310  # --url is checked: http(s)
            request, timeout=timeout
        )
    except urllib.error.HTTPError as error:
        response = error  # a 503 still carries the replica's JSON
    except OSError:
        return None
    try:
        with response:
            body = json.loads(response.read().decode())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or "hostname" not in body:
        return None
    return Answer(response.status, str(body["hostname"]), str(body.get("version")))


def describe(answer: Answer | None) -> str:
    """How an unverified replica last answered, for the failure message."""
    if answer is None:
        return "unseen"
    state = "ready" if answer.status == 200 else f"HTTP {answer.status}"
    return f"{answer.version} {state}"


def unverified_replicas(
    url: str,
    hostnames: Iterable[str],
    version: str,
    timeout: float,
    fetch: Callable[[str], Answer | None] = fetch_readiness,
) -> dict[str, str]:
    """Ask `/readyz` under `url` until every hostname answered 200 with `version`.

    Returns those that did not, each with what it last said ("unseen": nothing).
    """
    target = readyz_url(url)
    last: dict[str, Answer | None] = {name: None for name in hostnames}
    deadline = time.monotonic() + timeout
    while last and time.monotonic() < deadline:
        answer = fetch(target)
        if answer is not None and answer.hostname in last:
            if answer.status == 200 and answer.version == version:
                del last[answer.hostname]
            else:
                last[answer.hostname] = answer
        time.sleep(REQUEST_INTERVAL)
    return {name: describe(answer) for name, answer in last.items()}
