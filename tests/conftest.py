"""Fixtures shared by the suite: real redis-server, gunicorn, a fresh app per test.

Also the one place that decides what a missing service binary means: devstack raises
MissingBinary (naming the Debian package); a test then skips, or fails when
PREWORK_REQUIRE_SERVICES=1 (CI), where every service must be installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from typing import NoReturn
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from devstack import GunicornServer, MissingBinary, RedisServer

AppFactory = Callable[..., Flask]


def services_required() -> bool:
    """True when a missing binary must fail the run instead of skipping (CI)."""
    return os.environ.get("PREWORK_REQUIRE_SERVICES", "") not in ("", "0")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test naming the package, or fail under PREWORK_REQUIRE_SERVICES=1."""
    if services_required():
        pytest.fail(f"{reason} (PREWORK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A fixture's missing binary: skip or fail (see skip_or_fail)."""
    try:
        return (yield)
    except MissingBinary as missing:
        reason = str(missing)  # raised outside the handler: no chained traceback
    skip_or_fail(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test's missing binary: skip or fail (see skip_or_fail)."""
    try:
        return (yield)
    except MissingBinary as missing:
        reason = str(missing)
    skip_or_fail(reason)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of its own on a free loopback port, stopped after the test."""
    with RedisServer() as server:
        yield server


def served_app(store_dir: Path, **settings: str) -> GunicornServer:
    """gunicorn.conf.py's defaults (its 2 workers) on the embedded store in
    `store_dir`, as `nox -s serve` and the stack run it; not started yet."""
    environment = {
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "EMBEDDED_STORE_DIR": str(store_dir),
        **settings,
    }
    return GunicornServer(environment, workers=2)


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
