"""Fixtures shared by the suite: real redis-server, gunicorn, a fresh app per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.processes import GunicornServer, RedisServer

AppFactory = Callable[..., Flask]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of its own on a free loopback port, stopped after the test."""
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture
def gunicorn_servers() -> Iterator[list[GunicornServer]]:
    """A list to put started GunicornServers in; each is stopped after the test."""
    servers: list[GunicornServer] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """Build an app (APP_ENV=test, embedded store in tmp_path) with extra settings."""

    def build(**environ: str) -> Flask:
        settings = {
            "APP_ENV": "test",
            "EMBEDDED_STORE_DIR": str(tmp_path / "notes-db"),
            "TRUSTED_PROXY_COUNT": "0",
            **environ,
        }
        return create_app(settings)

    return build


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    """A test client of an app with the embedded store and no cache."""
    return make_app().test_client()
