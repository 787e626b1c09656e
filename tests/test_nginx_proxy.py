"""A real nginx from the project's template in front of a real gunicorn, on loopback."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack import GunicornServer, NginxServer, find_binary, free_port, wait_until
from devstack.gunicorn import echo_server
from devstack.proxy import local_stack

pytestmark = pytest.mark.slow

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# Flood: a small rate and burst make the expected count robust on a busy machine.
FLOOD_RATE, FLOOD_BURST, FLOOD_SECONDS, FLOOD_MAX_REQUESTS = 10, 10, 3.0, 12000


@dataclass(frozen=True)
class Reply:
    """One HTTP response, read in full."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """The body parsed; it must be sent as application/json."""
        assert self.headers["Content-Type"] == "application/json", self.body
        return json.loads(self.body)


def send(
    connection: http.client.HTTPConnection,
    path: str = "/",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    """One request on an open `connection`, its response read in full."""
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return Reply(response.status, response.headers, response.read())


def fetch(port: int, path: str = "/", source: str = "127.0.0.1", **kw: Any) -> Reply:
    """One request on a fresh connection from loopback address `source`."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=20, source_address=(source, 0)
    )
    try:
        return send(connection, path, **kw)
    finally:
        connection.close()


def assert_json_error(reply: Reply, status: int, code: str) -> None:
    """`reply` is an error in the app's shape with this status and code."""
    assert reply.status == status, reply.body
    assert reply.json()["error"]["code"] == code
    assert set(reply.json()["error"]) == {"code", "message"}


@contextmanager
def running_upstream(port: int) -> Iterator[int]:
    """The stand-in app (echoes headers, `?sleep=`) under gunicorn on `port`.

    The real app behind nginx has its own test at the end of this module.
    """
    with echo_server(port):
        yield port


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    """The stand-in app's port, shared by the module's tests."""
    with running_upstream(free_port()) as port:
        yield port


@pytest.fixture(scope="module")
def proxy(upstream: int) -> Iterator[NginxServer]:
    """Stack defaults, except loopback addresses and 1 s upstream timeouts."""
    find_binary("nginx", "nginx")
    timeouts = {"NGINX_UPSTREAM_TIMEOUT": "1s", "NGINX_UPSTREAM_GET_TIMEOUT": "1s"}
    with NginxServer(upstream, timeouts) as nginx:
        yield nginx


@pytest.fixture(scope="module")
def strict_proxy(upstream: int) -> Iterator[NginxServer]:
    """Generous reads; one write per minute (burst 1); two concurrent requests per IP.

    Each test here uses its own client address (its own buckets) in 127.0.0.0/8.
    """
    find_binary("nginx", "nginx")
    limits = {
        "NGINX_RATE_LIMIT": "100r/s",
        "NGINX_RATE_BURST": "100",
        "NGINX_WRITE_RATE_LIMIT": "1r/m",
        "NGINX_WRITE_BURST": "1",
        "NGINX_CONN_LIMIT": "2",
        # The slow GETs that fill the cap must not be given up and sent elsewhere.
        "NGINX_UPSTREAM_GET_TIMEOUT": "10s",
    }
    with NginxServer(upstream, limits) as nginx:
        yield nginx


def log_entries(nginx: NginxServer, count: int, **match: Any) -> list[dict[str, Any]]:
    """The access log entries whose fields equal `match`, once there are `count`.

    nginx writes a line after it has answered, so a reply can arrive before it.
    """

    def matching() -> list[dict[str, Any]] | None:
        entries = [
            entry
            for entry in nginx.access_log_entries()
            if all(entry.get(key) == value for key, value in match.items())
        ]
        return entries if len(entries) >= count else None

    return wait_until(matching, timeout=10, what=f"{count} access log lines {match}")


def test_app_receives_the_forwarded_client_identity(proxy: NginxServer) -> None:
    reply = fetch(proxy.port, "/echo", headers={"Host": "notes.example"})
    seen = reply.json()
    headers = seen["headers"]
    assert headers["X-Real-Ip"] == "127.0.0.1"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["Host"] == "notes.example"
    assert seen["client_ip"] == "127.0.0.1"
    request_id = headers["X-Request-Id"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert reply.headers.get_all("X-Request-ID") == [request_id]


def test_responses_carry_security_headers_and_no_server_details(
    proxy: NginxServer,
) -> None:
    for path in ("/echo", "/nginx-health", "/metrics"):
        reply = fetch(proxy.port, path)
        for name, value in SECURITY_HEADERS.items():
            assert reply.headers.get_all(name) == [value], (path, name)
        assert reply.headers.get_all("Server") == ["nginx"]
        assert reply.headers["X-Powered-By"] is None


def test_spoofed_forwarded_for_does_not_change_the_client_ip(
    proxy: NginxServer,
) -> None:
    spoof = {"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "1.2.3.4"}
    seen = fetch(proxy.port, "/echo", headers=spoof).json()
    assert seen["headers"]["X-Forwarded-For"] == "1.2.3.4, 127.0.0.1"
    assert seen["headers"]["X-Real-Ip"] == "127.0.0.1"
    assert seen["client_ip"] == "127.0.0.1"  # ProxyFix(x_for=1): the last hop


@pytest.mark.parametrize(
    ("sent", "passes"),
    [
        ("client-trace-0001", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("bad id with spaces", False),
        ("dotted.id", False),
    ],
)
def test_a_client_request_id_passes_only_when_the_app_would_accept_it(
    proxy: NginxServer, sent: str, passes: bool
) -> None:
    reply = fetch(proxy.port, "/echo", headers={"X-Request-ID": sent})
    received = reply.json()["headers"]["X-Request-Id"]
    assert (received == sent) is passes
    assert reply.headers["X-Request-ID"] == received


def test_body_at_the_limit_passes_and_over_it_is_413_json(proxy: NginxServer) -> None:
    limit = 64 * 1024
    accepted = fetch(proxy.port, "/notes", method="POST", body=b"x" * limit)
    assert accepted.json()["body_bytes"] == limit
    refused = fetch(proxy.port, "/notes", method="POST", body=b"x" * (limit + 1))
    assert_json_error(refused, 413, "payload_too_large")


def test_upstream_slower_than_the_timeout_is_504_json(proxy: NginxServer) -> None:
    assert_json_error(fetch(proxy.port, "/slow?sleep=3"), 504, "gateway_timeout")


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/%6Detrics", "//metrics"])
def test_metrics_are_not_reachable(proxy: NginxServer, path: str) -> None:
    assert_json_error(fetch(proxy.port, path), 404, "not_found")


def test_access_log_is_json_with_upstream_address_and_time(
    proxy: NginxServer, upstream: int
) -> None:
    request_id = "log-check-0001"
    fetch(proxy.port, "/echo", headers={"X-Request-ID": request_id})
    entries = log_entries(proxy, 1, request_id=request_id)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["upstream_addr"] == f"127.0.0.1:{upstream}"
    assert float(entry["upstream_response_time"]) >= 0
    assert entry["limit_req"] in ("PASSED", "DELAYED")
    assert (entry["status"], entry["method"], entry["uri"]) == (200, "GET", "/echo")


def test_flood_from_one_ip_is_held_to_rate_and_burst(upstream: int) -> None:
    """Accepted = 1 + burst + rate x window (nginx's leaky bucket), within 10 %.

    Every flood request spoofs a different X-Forwarded-For: one bucket all the same.
    Meanwhile another client address (127.0.0.2) is served normally.
    """
    find_binary("nginx", "nginx")
    limits = {
        "NGINX_RATE_LIMIT": f"{FLOOD_RATE}r/s",
        "NGINX_RATE_BURST": str(FLOOD_BURST),
        "NGINX_CONN_LIMIT": "1000",
    }
    with NginxServer(upstream, limits) as nginx:
        flood = Flood(nginx.port)
        with ThreadPoolExecutor(max_workers=33) as pool:
            other = pool.submit(flood.other_client)
            workers = [pool.submit(flood.worker) for _ in range(32)]
        for worker in workers:
            worker.result()
        other_client = other.result()
        entries = log_entries(nginx, len(flood.replies), remote_addr="127.0.0.1")

    window = flood.last_send - flood.first_send
    expected = 1 + FLOOD_BURST + FLOOD_RATE * window
    statuses = [status for status, _ in flood.replies]
    accepted = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert abs(accepted - expected) <= 0.1 * expected, (accepted, expected, window)
    assert all(
        json.loads(body)["error"]["code"] == "too_many_requests"
        for status, body in flood.replies
        if status == 429
    )
    rejected_in_log = [e for e in entries if e["limit_req"] == "REJECTED"]
    assert len(rejected_in_log) == statuses.count(429)
    assert {e["status"] for e in rejected_in_log} == {429}
    assert other_client == [200] * FLOOD_BURST


class Flood:
    """Bounded load from 127.0.0.1: FLOOD_SECONDS or FLOOD_MAX_REQUESTS."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.replies: list[tuple[int, bytes]] = []
        self.limited = threading.Event()
        self.start = time.monotonic()
        self.first_send = float("inf")
        self.last_send = 0.0

    def next_send(self) -> int | None:
        """Index of the next request, or None once the flood is over."""
        now = time.monotonic()
        with self.lock:
            count = len(self.replies)
            if now - self.start > FLOOD_SECONDS or count >= FLOOD_MAX_REQUESTS:
                return None
            self.first_send = min(self.first_send, now)
            self.last_send = max(self.last_send, now)
            return count

    def worker(self) -> None:
        """Requests back to back, each on a new connection, as many clients would."""
        while (index := self.next_send()) is not None:
            spoof = f"10.{index % 250}.{index // 250 % 250}.1"
            reply = fetch(self.port, "/flood", headers={"X-Forwarded-For": spoof})
            with self.lock:
                self.replies.append((reply.status, reply.body))
            if reply.status == 429:
                self.limited.set()

    def other_client(self) -> list[int]:
        """Once 127.0.0.1 is being refused, a burst's worth from 127.0.0.2."""
        assert self.limited.wait(FLOOD_SECONDS), "the flood was never limited"
        return [
            fetch(self.port, "/other", source="127.0.0.2").status
            for _ in range(FLOOD_BURST)
        ]


def test_writes_have_their_own_stricter_limit(strict_proxy: NginxServer) -> None:
    """One write per minute plus a burst of one: the third write is refused."""
    client, port = "127.0.0.3", strict_proxy.port
    writes = [
        fetch(port, "/notes", client, method="POST", body=b"{}"),
        fetch(port, "/notes/1", client, method="PATCH", body=b"{}"),
        fetch(port, "/notes/1", client, method="DELETE"),
    ]
    read = fetch(port, "/notes/1", client)
    elsewhere = fetch(port, "/notes", "127.0.0.4", method="POST", body=b"{}")
    assert [reply.status for reply in writes[:2]] == [200, 200]
    assert_json_error(writes[2], 429, "too_many_requests")
    assert read.status == 200
    assert elsewhere.status == 200
    outcomes = [
        e["limit_req"] for e in log_entries(strict_proxy, 4, remote_addr=client)
    ]
    assert outcomes[2] == "REJECTED"
    assert "REJECTED" not in outcomes[:2] + outcomes[3:]


def refused_reply(port: int, client: str) -> Reply | None:
    """A quick request from `client`, when nginx refuses it."""
    reply = fetch(port, "/fast", client)
    return reply if reply.status == 429 else None


@contextmanager
def connection_cap_reached(port: int, client: str, sleep: int) -> Iterator[Reply]:
    """Two slow requests from `client` fill a cap of two; yields the refused third.

    On leaving, both slow requests must have been answered 200.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = [
            pool.submit(fetch, port, f"/slow?sleep={sleep}", client) for _ in range(2)
        ]
        yield wait_until(
            lambda: refused_reply(port, client),
            timeout=10,
            what=f"a third concurrent request from {client} to be refused",
        )
        assert [future.result().status for future in slow] == [200, 200]


def test_concurrent_requests_per_ip_are_capped(strict_proxy: NginxServer) -> None:
    client = "127.0.0.5"
    with connection_cap_reached(strict_proxy.port, client, sleep=3) as third:
        assert_json_error(third, 429, "too_many_requests")
    refused = log_entries(strict_proxy, 1, remote_addr=client, status=429)
    assert refused and refused[0]["limit_conn"] == "REJECTED"


def test_health_location_is_exempt_from_limits(strict_proxy: NginxServer) -> None:
    client = "127.0.0.6"
    with connection_cap_reached(strict_proxy.port, client, sleep=2):
        health = fetch(strict_proxy.port, "/nginx-health", client)
    assert (health.status, health.json()) == (200, {"status": "ok"})


def test_nginx_starts_before_its_upstream_and_reaches_it_once_up() -> None:
    """Upstream down: 502 JSON; the same nginx serves as soon as the app listens."""
    find_binary("nginx", "nginx")
    # Bound but not listening: connections are refused. free_port's ports lie below
    # the kernel's ephemeral range, so once the placeholder closes no outgoing
    # connection on the busy machine can take it before gunicorn binds it.
    with socket.socket() as placeholder:
        port = free_port()
        placeholder.bind(("127.0.0.1", port))
        with NginxServer(port) as nginx:
            assert_json_error(fetch(nginx.port, "/echo"), 502, "bad_gateway")
            placeholder.close()
            with running_upstream(port):
                assert fetch(nginx.port, "/echo").status == 200
            assert_json_error(fetch(nginx.port, "/echo"), 502, "bad_gateway")


def test_local_stack_runs_nginx_and_redis(upstream: int) -> None:
    find_binary("nginx", "nginx")
    find_binary("redis-server", "redis-server")
    with local_stack(upstream) as local:
        assert fetch(local.nginx.port, "/echo").status == 200
        assert local.redis_url is not None
        host_port = local.redis_url.split("//")[1].split("/")[0]
        host, port = host_port.split(":")
        with socket.create_connection((host, int(port)), 5) as redis:
            redis.sendall(b"PING\r\n")
            assert redis.recv(16) == b"+PONG\r\n"


def app_log_entry(log: Path, request_id: str) -> dict[str, Any] | None:
    """The app's JSON access line for `request_id`, once it is written."""
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("{") and json.loads(line).get("request_id") == request_id:
            entry: dict[str, Any] = json.loads(line)
            return entry
    return None


def test_the_real_app_behind_nginx_sees_and_logs_the_real_client(
    tmp_path: Path,
) -> None:
    """`app:create_app()` under gunicorn: client IP, request id, its own JSON errors."""
    find_binary("nginx", "nginx")
    log = tmp_path / "app.log"
    settings = {"APP_ENV": "test", "EMBEDDED_STORE_DIR": str(tmp_path / "db")}
    with GunicornServer(settings, log_path=log) as app_server:
        with NginxServer(app_server.port) as nginx:
            spoof = {"X-Forwarded-For": "1.2.3.4", "X-Request-ID": "trace-0001"}
            home = fetch(nginx.port, "/", headers=spoof)
            missing = fetch(nginx.port, "/api/notes/0123456789abcdef01234567")
            entry = wait_until(
                lambda: app_log_entry(log, "trace-0001"), 10, "the app's log line"
            )
    assert (home.status, home.json()["service"]) == (200, "prework")
    assert home.headers.get_all("X-Request-ID") == ["trace-0001"]
    assert entry["client_ip"] == "127.0.0.1"
    assert_json_error(missing, 404, "not_found")
