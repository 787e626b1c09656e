"""The service classes and `nox -s serve`'s program, on real binaries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess  # nosec B404 - runs `python -m devstack.serve`
import sys

import pytest
import requests

from devstack import RedisServer, find_binary, free_port, port_open, wait_until
from devstack.gunicorn import ROOT

pytestmark = pytest.mark.slow


def ping(port: int, password: str | None = None) -> bytes:
    """redis's answer to PING (after AUTH when `password`)."""
    with socket.create_connection(("127.0.0.1", port), 5) as redis:
        if password is not None:
            redis.sendall(f"AUTH {password}\r\n".encode())
            assert redis.recv(16) == b"+OK\r\n"
        redis.sendall(b"PING\r\n")
        return redis.recv(64)


def test_redis_server_answers_and_restarts_on_the_same_port() -> None:
    with RedisServer() as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert ping(redis.port) == b"+PONG\r\n"
        redis.stop()
        assert not port_open(redis.port)
        redis.start()
        assert ping(redis.port) == b"+PONG\r\n"
    assert not port_open(redis.port)


def test_redis_server_with_a_password_refuses_without_it() -> None:
    with RedisServer(password="s3cret") as redis:
        assert ping(redis.port).startswith(b"-NOAUTH")
        assert ping(redis.port, "s3cret") == b"+PONG\r\n"


def test_serve_with_proxy_answers_through_nginx_and_stops_on_ctrl_c() -> None:
    """`nox -s serve -- --proxy`'s program: the app behind nginx, Ctrl-C stops all."""
    find_binary("nginx", "nginx")
    find_binary("redis-server", "redis-server")
    app_port, http_port = free_port(), free_port()
    env = dict(
        os.environ, PREWORK_APP_PORT=str(app_port), PREWORK_HTTP_PORT=str(http_port)
    )
    serve = subprocess.Popen(  # nosec B603 - fixed argv
        [sys.executable, "-m", "devstack.serve", "--proxy"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches its whole group, as in a terminal
    )
    try:
        url = f"http://127.0.0.1:{http_port}/healthz"
        health = wait_until(lambda: requests.get(url, timeout=2), 60, "the proxied app")
        assert health.status_code == 200
        os.killpg(serve.pid, signal.SIGINT)
        output = serve.communicate(timeout=60)[0].decode()
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, output
    assert "redis-server at redis://127.0.0.1:" in output
    assert not port_open(http_port) and not port_open(app_port)
