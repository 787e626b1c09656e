"""Proof through nginx that every replica of the web service reports one version."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable

# Below nginx's per-IP rate limit (20 r/s), so verification is never throttled.
REQUEST_INTERVAL = 0.1


def fetch_identity(url: str, timeout: float = 5.0) -> tuple[str, str] | None:
    """(hostname, version) from the service's `/`; None unless it answers 2xx JSON."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        response = urllib.request.urlopen(  # nosec B310  # --url is checked: http(s)
            request, timeout=timeout
        )
        with response:
            body = json.loads(response.read().decode())
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    return str(body.get("hostname", "")), str(body.get("version", ""))


def unverified_replicas(
    url: str,
    hostnames: Iterable[str],
    version: str,
    timeout: float,
    fetch: Callable[[str], tuple[str, str] | None] = fetch_identity,
) -> dict[str, str]:
    """Ask `url` until every hostname answered `version`; return those that did not.

    The result maps each unverified hostname to what it last reported ("" if unseen).
    """
    pending = {name: "" for name in hostnames}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        identity = fetch(url)
        if identity is not None:
            hostname, reported = identity
            if hostname in pending:
                if reported == version:
                    del pending[hostname]
                else:
                    pending[hostname] = reported
        time.sleep(REQUEST_INTERVAL)
    return pending
