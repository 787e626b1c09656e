"""A steady, bounded client: a mix of the service's requests at a fixed rate,
counting answers, failures and resends per kind of request.

Every request goes to the stack's published port; the loop stops by itself after
`max_seconds` or `max_requests`, whichever comes first. MIXED stays within nginx's
per-address limits even when every request seems to come from one address: 8 r/s
with 5 writes in 16 is 2.5 writes/s (the limits: 20 r/s, 5 writes/s).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError
from urllib3.util.retry import Retry

from e2e.ledger import Content, Ledger, content_of

ROOT = "GET /"
HEAD_ROOT = "HEAD /"
READY = "GET /readyz"
READ = "GET note"
LIST = "GET notes"
CREATE = "POST note"
UPDATE = "PATCH note"
DELETE = "DELETE note"
# What the service's users send: reads of one note (the second read of a note is
# served from the cache), lists through the cursor, creates, updates and deletes
# (each write carrying an Idempotency-Key but DELETE, which is idempotent anyway),
# and the root and readiness pages. 16 long, prime to 3 and 5, so that nginx's round
# robin over 3 or 5 replicas gives each replica every kind in turn.
MIXED = (
    ROOT,
    READ,
    CREATE,
    LIST,
    ROOT,
    READ,
    UPDATE,
    READY,
    ROOT,
    READ,
    CREATE,
    LIST,
    HEAD_ROOT,
    DELETE,
    UPDATE,
    READY,
)
ROOT_ONLY = (ROOT,)
# Answers nginx gives when it could not pass a request on (a replica closing the
# kept connection it wrote on): a write with an Idempotency-Key is sent again.
GATEWAY_FAILED = 502
KEY_HEADER = "Idempotency-Key"
# A refused connection carried nothing (the published port had no listener: the edge
# replaced stop-first), so any request is safe to send on a new one: urllib3 tries
# again after 0, 0.2, 0.4, 0.8 and 1.6 s (about 3 s in all), as a client with connect
# retries does; the request counts as resent. Every other error is the client's rule
# below (`SteadyLoad._send`), never urllib3's (`read=False` raises it as it came).
REFUSED_RETRIES = Retry(
    total=None, connect=5, read=False, redirect=False, other=0, backoff_factor=0.1
)


@dataclass(frozen=True)
class Answer:
    """One request the steady client sent, as a chart plots it."""

    # time.time() when the request was sent.
    at: float
    # The request kind, e.g. "GET /".
    kind: str
    # The version that answered (GET / names it); None when failed or not named.
    version: str | None
    failed: bool
    # How long the request took, answered or not (a resend included).
    seconds: float


@dataclass
class KindCount:
    """One kind of request: how many sent, failed, resent, and the slowest."""

    sent: int = 0
    failed: int = 0
    resent: int = 0
    slowest: float = 0.0

    def line(self, kind: str) -> str:
        return (
            f"{kind}: sent {self.sent}, failed {self.failed}, resent {self.resent},"
            f" slowest {self.slowest:.2f} s"
        )


@dataclass(frozen=True)
class Call:
    """One request to send: method, path (after the base URL), JSON body, key."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    key: str | None = None
    # The note it reads or writes, and the content a write leaves there.
    note_id: str | None = None
    after: Content = None


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
    # Requests sent again once: a GET-like one whose kept-alive connection closed
    # before any answer, a write with an Idempotency-Key on any failed connection.
    resent: int = 0
    # Every request sent, in order.
    timeline: list[Answer] = field(default_factory=list)
    # Per kind of request (ROOT, READ, ...).
    kinds: dict[str, KindCount] = field(default_factory=dict)
    # How the store differs from what the client wrote (set when the client stops).
    data_problems: list[str] = field(default_factory=list)
    # Notes the client wrote that the data check read back.
    notes_checked: int = 0

    def summary(self) -> str:
        """One line for the session output."""
        versions = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items()))
        return (
            f"sent {self.sent}, failed {len(self.failures)}, resent {self.resent},"
            f" versions {{{versions}}}"
        )

    def kind_lines(self) -> str:
        """Per kind: sent, failed, resent, slowest; and the data check."""
        kinds = "; ".join(count.line(k) for k, count in sorted(self.kinds.items()))
        check = (
            f"data check: {len(self.data_problems)} problems"
            f" in {self.notes_checked} notes"
        )
        return f"{kinds}; {check}"

    def count(self, kind: str) -> KindCount:
        return self.kinds.setdefault(kind, KindCount())


class SourceAddress(HTTPAdapter):
    """Connections from one local address: another client to the edge."""

    def __init__(self, address: str) -> None:
        self._source = (address, 0)
        super().__init__(max_retries=REFUSED_RETRIES)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


def client_session(source: str | None) -> requests.Session:
    """A session of its own (its own kept-alive connection), from `source`."""
    session = requests.Session()
    adapter = (
        HTTPAdapter(max_retries=REFUSED_RETRIES)
        if source is None
        else SourceAddress(source)
    )
    session.mount("http://", adapter)
    return session


class SteadyLoad:
    """`mix`'s requests in turn at `rate` per second in a thread, round-robin over
    one session per source address, until stopped or bounded."""

    def __init__(
        self,
        url: str,
        rate: float,
        max_seconds: float = 300,
        max_requests: int = 5000,
        mix: Sequence[str] = MIXED,
        sources: Sequence[str | None] = (None,),
    ) -> None:
        self.url = url
        self.base = url.rstrip("/")
        self.interval = 1.0 / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.mix = tuple(mix)
        self.sources = tuple(sources)
        self.report = LoadReport()
        self.ledger = Ledger(f"load-{uuid.uuid4().hex[:10]}")
        self._cursor: str | None = None
        # Per session: its last request was answered on a connection kept open.
        self._kept_alive = [False] * len(self.sources)
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
        """Stop sending, check the notes written, and return the report."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=30)
            self._check_data()
        return self.report

    def _check_data(self) -> None:
        if not self.ledger.count:
            return
        try:
            self.report.data_problems = self.ledger.check(self.base)
        except (requests.RequestException, AssertionError) as error:
            self.report.data_problems = [f"data check: {error}"]
        self.report.notes_checked = len(self.ledger.notes)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        next_at = time.monotonic()
        sessions = [client_session(source) for source in self.sources]
        try:
            while (
                not self._stop.is_set()
                and time.monotonic() < deadline
                and self.report.sent < self.max_requests
            ):
                self._one(sessions)
                # After a slow answer the client goes on at its rate, never with a
                # burst to catch up (which nginx's write limit would refuse).
                next_at = max(next_at + self.interval, time.monotonic())
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for session in sessions:
                session.close()

    def _one(self, sessions: list[requests.Session]) -> None:
        index = self.report.sent % len(sessions)
        kind, call = self._plan(self.mix[self.report.sent % len(self.mix)])
        self.report.sent += 1
        count = self.report.count(kind)
        count.sent += 1
        at, started = time.time(), time.monotonic()
        version, failed = None, True
        try:
            version, failed = self._ask(sessions[index], index, kind, call)
        finally:
            took = time.monotonic() - started
            self.report.slowest = max(self.report.slowest, took)
            count.slowest = max(count.slowest, took)
            count.failed += failed
            self.report.timeline.append(Answer(at, kind, version, failed, took))

    def _plan(self, kind: str) -> tuple[str, Call]:
        """The request for `kind`; the root page when it needs a note and none is
        surely there yet."""
        ledger = self.ledger
        if kind == CREATE:
            fields = ledger.new_note()
            return kind, Call(
                "POST", "/api/notes", fields, f"{ledger.tag}-c{ledger.count}"
            )
        if kind == LIST:
            cursor = f"&cursor={self._cursor}" if self._cursor else ""
            return kind, Call("GET", f"/api/notes?tag={ledger.tag}&limit=5{cursor}")
        if kind in (READ, UPDATE, DELETE):
            note_id = ledger.live()
            if note_id is not None:
                return kind, self._note_call(kind, note_id)
            kind = ROOT
        paths = {
            ROOT: ("GET", "/"),
            HEAD_ROOT: ("HEAD", "/"),
            READY: ("GET", "/readyz"),
        }
        method, path = paths[kind]
        return kind, Call(method, path)

    def _note_call(self, kind: str, note_id: str) -> Call:
        path = f"/api/notes/{note_id}"
        if kind == READ:
            return Call("GET", path, note_id=note_id)
        if kind == DELETE:
            return Call("DELETE", path, note_id=note_id, after=None)
        current = self.ledger.current(note_id)
        assert current is not None  # nosec B101 - live() gives only notes there
        self.ledger.count += 1
        body = f"v{self.ledger.count}"
        return Call(
            "PATCH",
            path,
            {"body": body},
            f"{self.ledger.tag}-u{self.ledger.count}",
            note_id,
            (current[0], body, current[2]),
        )

    def _ask(
        self, session: requests.Session, index: int, kind: str, call: Call
    ) -> tuple[str | None, bool]:
        """Send one request: the version that answered (GET / only) and whether it
        failed; the ledger learns what a write did."""
        try:
            response, resent = self._send(session, index, kind, call)
        except requests.RequestException as error:
            self._failed(kind, call, f"{type(error).__name__}: {error}")
            return None, True
        # Any other answer is a failure here: the stream stays below the rate limit.
        # `/readyz` too: nginx passes a 503 on to other replicas (proxy_next_upstream),
        # so a 503 through it means no replica it tried was ready, and a user's load
        # balancer polling `/readyz` would take the whole stack out: downtime.
        expected = {CREATE: 201, DELETE: 204, HEAD_ROOT: 200}.get(kind, 200)
        # A resent DELETE finds the note gone when the first one deleted it.
        if response.status_code != expected and not (
            kind == DELETE and resent and response.status_code == 404
        ):
            self._failed(kind, call, f"{response.status_code}: {response.text[:200]}")
            return None, True
        return self._answered(kind, call, response), False

    def _failed(self, kind: str, call: Call, why: str) -> None:
        self.report.failures.append(f"{kind}: {why}")
        if kind == CREATE and call.body is not None:
            self.ledger.unsure_titles.add(call.body["title"])
        elif kind in (UPDATE, DELETE) and call.note_id is not None:
            self.ledger.wrote(call.note_id, call.after, answered=False)

    def _answered(
        self, kind: str, call: Call, response: requests.Response
    ) -> str | None:
        if kind == CREATE:
            self.ledger.created(response.json())
        elif kind == UPDATE and call.note_id is not None:
            self.ledger.wrote(call.note_id, content_of(response.json()), answered=True)
        elif kind == DELETE and call.note_id is not None:
            self.ledger.wrote(call.note_id, None, answered=True)
        elif kind == LIST:
            self._cursor = response.json()["next_cursor"]
        elif kind == ROOT:
            return self._root(response.json())
        return None

    def _root(self, body: dict[str, Any]) -> str:
        version = str(body.get("version"))
        self.report.versions[version] += 1
        self.report.replicas[str(body.get("hostname"))] += 1
        visits = body.get("visits")
        self.report.visits.append(visits if isinstance(visits, int) else None)
        return version

    def _send(
        self, session: requests.Session, index: int, kind: str, call: Call
    ) -> tuple[requests.Response, bool]:
        """The answer, and whether the request was sent again once to get it.

        An HTTP/1.1 server may close an idle kept-alive connection at any moment (nginx
        does at each reload); a request crossing that close gets no answer, and
        clients (browsers, urllib3 pools on a stale socket) send an idempotent request
        again (RFC 9112, 9.3.1). A write with an Idempotency-Key is safe to send again
        after any failed connection or nginx's 502 (a replica closed the connection
        nginx wrote it on): a repeat gets the first answer. A refused connection sent
        nothing: urllib3 connects again (REFUSED_RETRIES). Anything else (a timeout
        of an unkeyed request, any new connection closed without an answer) is a
        failure, never resent.
        """
        kept_alive, self._kept_alive[index] = self._kept_alive[index], False
        headers = {KEY_HEADER: call.key} if call.key else {}

        def send() -> requests.Response:
            return session.request(
                call.method,
                self.base + call.path,
                json=call.body,
                headers=headers,
                timeout=10,
            )

        resent = False
        try:
            response = send()
        except requests.ConnectionError as error:
            if not (call.key or (kept_alive and closed_before_answer(error))):
                raise
            response, resent = self._resend(kind, send), True
        if call.key and response.status_code == GATEWAY_FAILED and not resent:
            response, resent = self._resend(kind, send), True
        elif reconnected(response) and not resent:
            self._count_resent(kind)
            resent = True
        self._kept_alive[index] = (
            response.headers.get("Connection", "").lower() != "close"
        )
        return response, resent

    def _resend(
        self, kind: str, send: Callable[[], requests.Response]
    ) -> requests.Response:
        self._count_resent(kind)
        return send()

    def _count_resent(self, kind: str) -> None:
        self.report.resent += 1
        self.report.count(kind).resent += 1


def reconnected(response: requests.Response) -> bool:
    """True when urllib3 connected again after a refused one (REFUSED_RETRIES)."""
    retries = getattr(response.raw, "retries", None)
    return bool(retries is not None and retries.history)


def closed_before_answer(error: requests.ConnectionError) -> bool:
    """True when the server closed the connection without answering the request."""
    cause = error.args[0] if error.args else None
    if not isinstance(cause, ProtocolError):
        return False
    reason = cause.args[1] if len(cause.args) > 1 else None
    return isinstance(reason, (RemoteDisconnected, ConnectionResetError))
