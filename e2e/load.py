"""A steady, bounded client: GET / at a fixed rate, counting versions and failures.

Every request goes to the stack's published port on loopback; the loop stops by itself
after `max_seconds` or `max_requests`, whichever comes first.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.client import RemoteDisconnected

import requests
from urllib3.exceptions import ProtocolError


@dataclass(frozen=True)
class Answer:
    """One request the steady client sent, as a chart plots it."""

    # time.time() when the request was sent.
    at: float
    # The request kind, e.g. "GET /".
    kind: str
    # The version that answered; None when the request failed.
    version: str | None
    failed: bool
    # How long the request took, answered or not (a resend included).
    seconds: float


@dataclass
class LoadReport:
    """What the client saw: requests sent, versions answered, failures."""

    sent: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # The replica (container hostname) that answered, and each answer's visit count
    # (None: the app answered without Redis).
    replicas: Counter[str] = field(default_factory=Counter)
    visits: list[int | None] = field(default_factory=list)
    # The longest a request took (seconds), answered or not.
    slowest: float = 0.0
    # Visit increments the client saw undone (the count fell back), set by a step.
    lost_visits: int = 0
    # GETs sent again once because a kept-alive connection closed before any answer.
    resent: int = 0
    # Every request sent, in order.
    timeline: list[Answer] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the session output."""
        versions = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
        return (
            f"sent {self.sent}, failed {len(self.failures)}, resent {self.resent},"
            f" versions {{{versions}}}"
        )


class SteadyLoad:
    """GET url at `rate` requests per second in a thread, until stopped or bounded."""

    def __init__(
        self, url: str, rate: float, max_seconds: float = 300, max_requests: int = 5000
    ) -> None:
        self.url = url
        self.interval = 1.0 / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.report = LoadReport()
        # The last request was answered on a connection the server kept open.
        self._kept_alive = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="steady-load", daemon=True
        )

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadReport:
        """Stop sending and return the report."""
        self._stop.set()
        self._thread.join(timeout=30)
        return self.report

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        next_at = time.monotonic()
        with requests.Session() as session:
            while (
                not self._stop.is_set()
                and time.monotonic() < deadline
                and self.report.sent < self.max_requests
            ):
                self._one(session)
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _one(self, session: requests.Session) -> None:
        self.report.sent += 1
        at, started = time.time(), time.monotonic()
        version = None
        try:
            version = self._ask(session)
        finally:
            took = time.monotonic() - started
            self.report.slowest = max(self.report.slowest, took)
            self.report.timeline.append(
                Answer(at, "GET /", version, version is None, took)
            )

    def _ask(self, session: requests.Session) -> str | None:
        """Send one request; the version that answered, None when it failed."""
        try:
            response = self._get(session)
        except requests.RequestException as error:
            self.report.failures.append(f"{type(error).__name__}: {error}")
            return None
        # Any non-2xx is a failure here: the stream stays below the rate limit.
        if not response.ok:
            self.report.failures.append(
                f"{response.status_code}: {response.text[:200]}"
            )
            return None
        body = response.json()
        version = str(body.get("version"))
        self.report.versions[version] += 1
        self.report.replicas[str(body.get("hostname"))] += 1
        visits = body.get("visits")
        self.report.visits.append(visits if isinstance(visits, int) else None)
        return version

    def _get(self, session: requests.Session) -> requests.Response:
        """GET, sent again once when a kept-alive connection closed before any answer.

        An HTTP/1.1 server may close an idle kept-alive connection at any moment (nginx
        does at each reload); a request crossing that close gets no answer, and
        clients (browsers, urllib3 pools on a stale socket) send an idempotent request
        again (RFC 9112, 9.3.1). A new connection closed without an answer, a refused
        connection and a timeout are failures, never resent.
        """
        kept_alive, self._kept_alive = self._kept_alive, False
        try:
            response = session.get(self.url, timeout=10)
        except requests.ConnectionError as error:
            if not (kept_alive and closed_before_answer(error)):
                raise
            self.report.resent += 1
            response = session.get(self.url, timeout=10)
        self._kept_alive = response.headers.get("Connection", "").lower() != "close"
        return response


def closed_before_answer(error: requests.ConnectionError) -> bool:
    """True when the server closed the connection without answering the request."""
    cause = error.args[0] if error.args else None
    if not isinstance(cause, ProtocolError):
        return False
    reason = cause.args[1] if len(cause.args) > 1 else None
    return isinstance(reason, (RemoteDisconnected, ConnectionResetError))
