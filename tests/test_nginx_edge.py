"""The edge (a TCP proxy with the PROXY protocol) in front of a real nginx, on loopback.

As in the stack: client -> edge (nginx `stream`) -> nginx listening with
`proxy_protocol`, trusting the header from the edge's address only -> the stand-in app.
Clients use their own loopback addresses (127.0.0.5 ...) so the address that reaches
nginx through the edge is told apart from the edge's own (127.0.0.1).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import NginxServer, find_binary, free_port, wait_until
from devstack.edge import EdgeServer
from devstack.nginx import UpstreamWatch
from tests.raw_http import closed_by_server, raw_reply
from tests.test_nginx_proxy import fetch, log_entries, upstream
from tests.test_nginx_upstream_watch import Names

pytestmark = pytest.mark.slow
__all__ = ["upstream"]  # the stand-in app's fixture, shared with the proxy tests

# nginx as the stack runs it behind the edge, on loopback: only the edge's address
# (127.0.0.1) is believed; one write a minute (burst 1) makes a third write a 429.
BEHIND_EDGE = {
    "NGINX_REAL_IP_FROM": "127.0.0.1",
    "NGINX_WRITE_RATE_LIMIT": "1r/m",
    "NGINX_WRITE_BURST": "1",
}


@pytest.fixture(scope="module")
def nginx(upstream: int) -> Iterator[NginxServer]:
    """nginx listening with the PROXY protocol in front of the stand-in app."""
    find_binary("nginx", "nginx")
    port = free_port()
    overrides = {**BEHIND_EDGE, "NGINX_LISTEN": f"127.0.0.1:{port} proxy_protocol"}
    with NginxServer(upstream, overrides, port=port) as server:
        yield server


@pytest.fixture(scope="module")
def edge(nginx: NginxServer) -> Iterator[EdgeServer]:
    """The edge in front of that nginx."""
    with EdgeServer(nginx.port) as server:
        yield server


def test_the_client_address_arrives_through_the_edge(
    edge: EdgeServer, nginx: NginxServer
) -> None:
    traced = {"X-Request-ID": "edge-client-0001"}
    seen = fetch(edge.port, "/echo", source="127.0.0.5", headers=traced).json()
    assert seen["headers"]["X-Real-Ip"] == "127.0.0.5"
    assert seen["headers"]["X-Forwarded-For"] == "127.0.0.5"
    assert seen["client_ip"] == "127.0.0.5"
    entries = log_entries(nginx, 1, request_id="edge-client-0001")
    assert [entry["remote_addr"] for entry in entries] == ["127.0.0.5"]


def test_a_forged_forwarded_for_is_not_trusted_through_the_edge(
    edge: EdgeServer,
) -> None:
    spoof = {"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "1.2.3.4"}
    seen = fetch(edge.port, "/echo", source="127.0.0.6", headers=spoof).json()
    assert seen["headers"]["X-Forwarded-For"] == "1.2.3.4, 127.0.0.6"
    assert seen["headers"]["X-Real-Ip"] == "127.0.0.6"
    assert seen["client_ip"] == "127.0.0.6"  # ProxyFix(x_for=1): the last hop


def test_each_client_address_has_its_own_rate_limit_through_the_edge(
    edge: EdgeServer,
) -> None:
    """The limits key on the client behind the edge, not on the edge's address."""

    def write(source: str) -> int:
        return fetch(edge.port, "/notes", source, method="POST", body=b"{}").status

    assert [write("127.0.0.7") for _ in range(3)] == [200, 200, 429]
    assert write("127.0.0.8") == 200


def proxy_header_reply(port: int, source: str, claimed: str) -> bytes:
    """A GET straight to nginx from `source`, its PROXY header claiming `claimed`."""
    header = f"PROXY TCP4 {claimed} 127.0.0.1 40000 {port}\r\n"
    request = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), 10, (source, 0)) as sock:
        sock.sendall((header + request).encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_proxy_header_from_another_peer_is_not_believed(nginx: NginxServer) -> None:
    """Only the edge's address may say who the client is."""
    reply = proxy_header_reply(nginx.port, "127.0.0.9", "9.9.9.9")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert re.search(rb'"client_ip": ?"127\.0\.0\.9"', reply), reply


def test_nginx_behind_the_edge_refuses_a_connection_without_the_header(
    nginx: NginxServer,
) -> None:
    with socket.create_connection(("127.0.0.1", nginx.port), 10) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536) == b""  # closed, nothing served


def test_the_edge_moves_on_from_a_refused_nginx_address(
    tmp_path: Path, upstream: int
) -> None:
    """The name resolves to a stopped nginx (127.0.0.2) and a live one: no failure.

    The stack's case during nginx's start-first update, when the old task has closed
    its listener.
    """
    find_binary("nginx", "nginx")
    names = Names(tmp_path)
    names.point(["127.0.0.2", "127.0.0.1"])
    port = free_port()
    overrides = {**BEHIND_EDGE}
    overrides["NGINX_LISTEN"] = f"127.0.0.1:{port} proxy_protocol"
    with NginxServer(upstream, overrides, port=port) as nginx:
        watched = {"NGINX_UPSTREAM_HOST": "web"}
        with EdgeServer(nginx.port, watched, watch_wrapper=names.wrapper) as edge:
            servers = (edge.prefix / "nginx.servers").read_text()
            statuses = [fetch(edge.port, "/echo").status for _ in range(20)]
    assert f"server 127.0.0.2:{port}" in servers, servers
    assert statuses == [200] * 20


def refused(port: int, request: bytes, source: str) -> bool:
    """True when the edge closes a connection from `source` unanswered (a close or,
    with bytes still unread on its side, a reset)."""
    try:
        return raw_reply(port, request, source) == b""
    except ConnectionResetError:
        return True


def test_one_address_holding_connections_at_the_edge_is_capped(
    upstream: int,
) -> None:
    """Two connections trickling headers fill 127.0.0.30's cap of two at the edge: its
    third is closed unanswered while 127.0.0.31 is served; once nginx's header timeout
    (4 s here) has closed the two, 127.0.0.30 is served again. The timeout is the
    window for the third connection: at 1 s, a loaded machine (the suite's parallel
    workers) could reach the third after the two had been closed."""
    find_binary("nginx", "nginx")
    port = free_port()
    overrides = {
        **BEHIND_EDGE,
        "NGINX_LISTEN": f"127.0.0.1:{port} proxy_protocol",
        "NGINX_CLIENT_HEADER_TIMEOUT": "4s",
    }
    request = b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with NginxServer(upstream, overrides, port=port) as nginx:
        with EdgeServer(nginx.port, {"NGINX_EDGE_CONN_LIMIT": "2"}) as edge:
            address = ("127.0.0.1", edge.port)
            held = [
                socket.create_connection(address, 0.1, ("127.0.0.30", 0))
                for _ in range(2)
            ]
            for sock in held:
                sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
            third = wait_until(
                lambda: refused(edge.port, request, "127.0.0.30"),
                timeout=10,
                what="a third connection from 127.0.0.30 to be refused",
            )
            other = raw_reply(edge.port, request, "127.0.0.31")
            assert [closed_by_server(sock, b"X-Slow: 1\r\n") for sock in held] == [
                b"",
                b"",
            ]
            for sock in held:
                sock.close()
            again = wait_until(
                lambda: raw_reply(edge.port, request, "127.0.0.30").startswith(
                    b"HTTP/1.1 200"
                ),
                timeout=20,
                what="127.0.0.30 to be served again",
            )
    assert third and again
    assert other.startswith(b"HTTP/1.1 200"), other[:200]


def test_the_watchers_own_reload_names_the_edges_main_config(
    edge: EdgeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the stack the image's entrypoint starts the watcher with no command, and the
    edge runs on NGINX_MAIN_CONF (its root file system is read-only), not on the
    image's nginx.conf: the watcher's own reload names that config, or it would
    signal no nginx at all (Debian's nginx.conf names another pid file)."""
    monkeypatch.setenv("NGINX_MAIN_CONF", str(edge.prefix / "nginx.conf"))
    error_log = edge.prefix / "logs" / "error.log"
    before = error_log.read_text().count("signal 1 (SIGHUP) received")
    # A servers file of its own: its first write is a change, which reloads.
    variables = {
        **edge.watch_variables(),
        "NGINX_UPSTREAM_SERVERS": str(tmp_path / "watched.servers"),
        "NGINX_UPSTREAM_POLL": "0.2",
    }
    with UpstreamWatch(variables, reload=[]):
        wait_until(
            lambda: error_log.read_text().count("signal 1 (SIGHUP) received") > before,
            15,
            "the edge told to reload",
        )
