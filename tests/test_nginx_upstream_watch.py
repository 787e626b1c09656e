"""nginx/upstream-watch.sh keeps a real nginx's upstream equal to a name's addresses.

The stand-in replicas are gunicorn servers on 127.0.0.2, .3, ... (one port, as the
replicas of `web` share 8000). The watcher resolves `web` with the real getent in a
mount namespace of its own, where a hosts file the test rewrites is /etc/hosts and
NSS asks only files: the same lookup as in the image, with a name the test controls.
Which replica served a request is the access log's `upstream_addr`.
"""

from __future__ import annotations

import http.server
import itertools
import os
import socket
import subprocess  # nosec B404 # probes unshare
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from devstack import NginxServer, find_binary, free_port, wait_until
from devstack.gunicorn import echo_server
from tests.conftest import skip_or_fail
from tests.test_nginx_proxy import assert_json_error, fetch

pytestmark = pytest.mark.slow

# Every rewrite of the hosts file is this long: one write, never a truncated file.
HOSTS_SIZE = 4096
FAST = {"NGINX_RATE_LIMIT": "100000r/s", "NGINX_RATE_BURST": "100000"}
FAST_POLL = {**FAST, "NGINX_UPSTREAM_POLL": "0.2"}
PROBES = itertools.count()
# How a kept connection that the server closed while idle fails a request sent on it.
CLOSED_IDLE = ("without response", "Connection reset by peer")


class Names:
    """A hosts file that is /etc/hosts (NSS `hosts: files`) for the watcher only."""

    def __init__(self, folder: Path) -> None:
        self.hosts = folder / "hosts"
        nsswitch = folder / "nsswitch.conf"
        nsswitch.write_text("hosts: files\n")
        self.point([])
        unshare = find_binary("unshare", "util-linux")
        shell = find_binary("sh", "dash")
        bind = 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf'
        self.wrapper = [
            unshare,
            "--mount",
            "--map-root-user",
            shell,
            "-c",
            f'{bind} && shift 2 && exec "$@"',
            "hosts-namespace",
            str(self.hosts),
            str(nsswitch),
        ]
        probe = subprocess.run(  # nosec B603 # fixed argv
            [*self.wrapper, "getent", "hosts", "localhost"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 2:  # no `localhost` line: only our file is read
            skip_or_fail(f"no private mount namespace here: {probe.stderr.strip()}")

    def point(self, addresses: list[str]) -> None:
        """`web` resolves to `addresses` from now on (none: it does not resolve)."""
        text = "".join(f"{address} web\n" for address in addresses).encode()
        descriptor = os.open(self.hosts, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(descriptor, text.ljust(HOSTS_SIZE, b"#"), 0)
        finally:
            os.close(descriptor)


@pytest.fixture
def names(tmp_path: Path) -> Names:
    """The name `web`, resolving to nothing until the test points it somewhere."""
    find_binary("nginx", "nginx")
    return Names(tmp_path)


@contextmanager
def replicas(addresses: list[str], port: int) -> Iterator[None]:
    """A stand-in app replica on each loopback address, all on `port`."""
    with ExitStack() as stack:
        for address in addresses:
            replica = echo_server(port, threads=4, host=address, workers=1)
            stack.enter_context(replica)
        yield


@contextmanager
def watched_nginx(names: Names, port: int) -> Iterator[NginxServer]:
    """nginx in front of `web`:`port`, the watcher polling every 0.2 s."""
    overrides = {"NGINX_UPSTREAM_HOST": "web", **FAST_POLL}
    with NginxServer(port, overrides, watch_wrapper=names.wrapper) as nginx:
        yield nginx


def servers(nginx: NginxServer) -> str:
    """The upstream servers file as the watcher last wrote it."""
    return (nginx.prefix / "conf.d" / "web.servers").read_text()


def served_by(nginx: NginxServer, count: int, tag: str) -> Counter[str]:
    """Send `count` GETs tagged `tag`; how many each upstream address served."""
    for index in range(count):
        reply = fetch(nginx.port, "/echo", headers={"X-Request-ID": f"{tag}-{index}"})
        assert reply.status == 200, reply.body
    wait_until(
        lambda: len(tagged(nginx, tag)) >= count, 10, f"{count} log lines for {tag}"
    )
    return Counter(str(entry["upstream_addr"]) for entry in tagged(nginx, tag))


def tagged(nginx: NginxServer, tag: str) -> list[dict[str, object]]:
    """Access log entries whose request id starts with `tag`-."""
    return [
        entry
        for entry in nginx.access_log_entries()
        if str(entry["request_id"]).startswith(f"{tag}-")
    ]


def settled(nginx: NginxServer) -> bool:
    """True when no worker of an earlier configuration is still running.

    For a moment after a reload the old worker accepts too, with the old servers.
    """
    log = nginx.error_log.read_text()
    return log.count("start worker process ") - log.count(" exited with code ") == 1


def reaches(nginx: NginxServer, wanted: set[str], port: int) -> bool:
    """True once only the current worker serves, reaching exactly the `wanted`."""
    if not settled(nginx):
        return False
    reached = served_by(nginx, 4 * len(wanted), f"probe{next(PROBES)}")
    return set(reached) == {f"{address}:{port}" for address in wanted}


def test_nginx_starts_before_web_resolves_and_answers_502_json(names: Names) -> None:
    """No address for `web`: nginx runs on one `down` server and says 502 in JSON."""
    port = free_port("0.0.0.0")  # nosec B104 # free on every loopback address
    with watched_nginx(names, port) as nginx:
        assert "down;" in servers(nginx)
        assert_json_error(fetch(nginx.port, "/echo"), 502, "bad_gateway")
        with replicas(["127.0.0.2"], port):
            names.point(["127.0.0.2"])
            wait_until(
                lambda: fetch(nginx.port, "/echo").status == 200,
                10,
                "nginx to follow web's first replica",
            )
            assert servers(nginx).splitlines()[1:] == [
                f"server 127.0.0.2:{port} max_fails=0;"
            ]
        names.point([])
        wait_until(lambda: "down;" in servers(nginx), 10, "the down server again")
        wait_until(
            lambda: fetch(nginx.port, "/echo").status == 502, 10, "502 once web is gone"
        )


def test_scale_up_and_down_is_followed(names: Names) -> None:
    """1 -> 3 replicas: requests reach all three; 3 -> 1: only the one left."""
    port = free_port("0.0.0.0")  # nosec B104 # free on every loopback address
    addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    with replicas(addresses, port), watched_nginx(names, port) as nginx:
        names.point(addresses[:1])
        wait_until(lambda: reaches(nginx, {addresses[0]}, port), 15, "one replica")
        names.point(addresses)
        wait_until(lambda: reaches(nginx, set(addresses), port), 15, "three replicas")
        spread = served_by(nginx, 30, "three")
        names.point(addresses[1:2])
        wait_until(lambda: reaches(nginx, {addresses[1]}, port), 15, "scale down")
        after = served_by(nginx, 20, "one")
    # Every replica is reached; how evenly depends on nginx marking a replica that
    # was slow to answer on a busy machine as failed for a while (max_fails).
    assert set(spread) == {f"{address}:{port}" for address in addresses}, spread
    assert after == {f"{addresses[1]}:{port}": 20}


def test_a_replaced_replica_is_dropped_while_it_still_answers(names: Names) -> None:
    """`web` moves from .2 to .3; .2 still runs, yet nginx sends it nothing more."""
    port = free_port("0.0.0.0")  # nosec B104 # free on every loopback address
    with replicas(["127.0.0.2", "127.0.0.3"], port), watched_nginx(names, port) as n:
        names.point(["127.0.0.2"])
        wait_until(lambda: reaches(n, {"127.0.0.2"}, port), 15, "the old replica")
        names.point(["127.0.0.3"])
        wait_until(lambda: reaches(n, {"127.0.0.3"}, port), 15, "the new replica")
        after = served_by(n, 40, "after")
        kept = servers(n)
    assert after == {f"127.0.0.3:{port}": 40}
    assert "127.0.0.2" not in kept


class Load:
    """Clients in threads, GET after GET until stopped: keep-alive and fresh ones.

    A reload closes the old worker's idle keep-alive connections; a GET sent on one at
    that instant finds it closed (no response, or a reset). HTTP clients may resend an
    idempotent request then (RFC 9112, 9.3.1), and the keep-alive clients here do,
    once, counting it in `resent`. A fresh connection is never resent.
    """

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/echo"
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []
        self.resent = 0

    def record(self, status: int | None, error: str = "") -> None:
        """Count one answer, or keep the error of a request that got none."""
        with self.lock:
            if status is None:
                self.errors.append(error)
            else:
                self.statuses[status] += 1

    def get(self, session: requests.Session, path: str, keep_alive: bool) -> int:
        """One GET; on a kept connection closed with no response, sent once more."""
        if not keep_alive:
            return requests.get(self.url + path, timeout=10).status_code
        try:
            return session.get(self.url + path, timeout=10).status_code
        except requests.ConnectionError as error:
            # Closed before or as the request arrived: no answer, or a reset.
            if not any(sign in str(error) for sign in CLOSED_IDLE):
                raise
        with self.lock:
            self.resent += 1
        return session.get(self.url + path, timeout=10).status_code

    def client(self, keep_alive: bool, path: str) -> None:
        """Requests back to back; a slow `path` is in flight across reloads."""
        with requests.Session() as session:
            while not self.stopped.is_set():
                try:
                    status = self.get(session, path, keep_alive)
                except requests.RequestException as error:
                    kind = "kept" if keep_alive else "fresh"
                    self.record(None, f"{kind} {path}: {type(error).__name__}: {error}")
                else:
                    self.record(status)

    def sent(self) -> int:
        """Requests answered so far."""
        with self.lock:
            return sum(self.statuses.values())


def test_reloads_under_load_fail_no_request(names: Names) -> None:
    """The set changes six times while clients send; every request is answered 200.

    Each change rewrites the servers file and reloads nginx; slow requests (0.3 s)
    are in flight across every reload, on keep-alive and on fresh connections. A
    keep-alive client resends at most once per reload (see Load).
    """
    port = free_port("0.0.0.0")  # nosec B104 # free on every loopback address
    sets = [["127.0.0.2"], ["127.0.0.2", "127.0.0.3"], ["127.0.0.3"]] * 2
    with replicas(["127.0.0.2", "127.0.0.3"], port), watched_nginx(names, port) as n:
        names.point(["127.0.0.3"])
        wait_until(lambda: reaches(n, {"127.0.0.3"}, port), 15, "the first replica")
        load = Load(n.port)
        with ThreadPoolExecutor(max_workers=4) as pool:
            clients = [
                pool.submit(load.client, keep_alive, path)
                for keep_alive in (True, False)
                for path in ("", "?sleep=0.3")
            ]
            try:
                for count, addresses in enumerate(sets, start=2):
                    sent = load.sent()
                    names.point(addresses)
                    wait_until(lambda: reloads(n) == count, 10, f"reload {count}")
                    wait_until(lambda: load.sent() >= sent + 20, 20, "load after")
            finally:
                load.stopped.set()
            for client in clients:
                client.result()
        kept = servers(n)
    assert load.errors == []
    assert set(load.statuses) == {200}, load.statuses
    assert load.resent <= 2 * len(sets), load.resent  # two keep-alive clients
    assert kept.splitlines()[1:] == [f"server 127.0.0.3:{port} max_fails=0;"]


def reloads(nginx: NginxServer) -> int:
    """How many times nginx has been told to reload."""
    return nginx.error_log.read_text().count("signal 1 (SIGHUP) received")


@contextmanager
def silent_replica(address: str, port: int) -> Iterator[None]:
    """A replica that takes connections and never answers: as one on a lost node
    that nginx keeps a connection to (no RST ever comes back)."""
    with socket.create_server((address, port), backlog=64):
        yield


def test_a_get_meeting_a_silent_replica_is_answered_by_another(names: Names) -> None:
    """After NGINX_UPSTREAM_GET_TIMEOUT, not the 30 s of NGINX_UPSTREAM_TIMEOUT:
    every GET is answered before the client's own 10 s timeout."""
    port = free_port()
    with replicas(["127.0.0.2"], port), silent_replica("127.0.0.3", port):
        names.point(["127.0.0.2", "127.0.0.3"])
        with watched_nginx(names, port) as nginx:
            wait_until(lambda: "127.0.0.3" in servers(nginx), 10, "both replicas")
            for index in range(4):
                reply = fetch(
                    nginx.port, "/echo", headers={"X-Request-ID": f"s-{index}"}
                )
                assert reply.status == 200, reply.body
            wait_until(lambda: len(tagged(nginx, "s")) >= 4, 10, "4 log lines")
            tried = {str(entry["upstream_addr"]) for entry in tagged(nginx, "s")}
    assert f"127.0.0.3:{port}, 127.0.0.2:{port}" in tried, tried


class Unready(http.server.BaseHTTPRequestHandler):
    """A replica whose store is down: every request it reads answers 503 JSON, as
    the app's StoreUnavailable does (whether a write happened is not said)."""

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"error":{"code":"unavailable","message":"store down"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = answer

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads nginx's access log."""


@contextmanager
def unready_replica(address: str, port: int) -> Iterator[list[str]]:
    """The Unready replica on `address`:`port`; yields the methods it was sent."""
    seen: list[str] = []

    class Counted(Unready):
        def answer(self) -> None:
            seen.append(self.command)
            super().answer()

        do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = answer

    server = http.server.ThreadingHTTPServer((address, port), Counted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_unready_replicas_503_is_resent_only_for_idempotent_methods(
    names: Names,
) -> None:
    """GET and DELETE that meet it are answered by a ready replica; a POST or PATCH
    is not sent again (a 503 does not say nothing was written): the client gets it.
    docs/PROXY.md, "A replica that is not ready"."""
    port = free_port()
    with replicas(["127.0.0.2"], port), unready_replica("127.0.0.3", port) as seen:
        names.point(["127.0.0.2", "127.0.0.3"])
        with watched_nginx(names, port) as nginx:
            wait_until(lambda: "127.0.0.3" in servers(nginx), 10, "both replicas")
            wait_until(lambda: settled(nginx), 10, "one worker")
            answered = {
                method: [fetch(nginx.port, "/echo", method=method).status for _ in "ab"]
                for method in ("GET", "DELETE", "POST", "PATCH")
            }
    assert answered["GET"] == answered["DELETE"] == [200, 200], answered
    # Round robin over two: one of the two writes met the unready replica.
    for method in ("POST", "PATCH"):
        assert sorted(answered[method]) == [200, 503], answered
        assert seen.count(method) == 1, seen
