"""The Redis read-through cache against a real redis-server, including an outage."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.cache import CacheRead, CacheStatus, RedisNotesCache, ThrottledWarning
from app.config import RedisSettings, Secret
from devstack import RedisServer, free_port, wait_until
from tests.conftest import AppFactory

pytestmark = pytest.mark.slow


def cached_app(make_app: AppFactory, redis: RedisServer, **environ: str) -> Flask:
    """An app caching in `redis` for 30 s."""
    return make_app(REDIS_URL=redis.url, CACHE_TTL_SECONDS="30", **environ)


def new_note(client: Any, title: str = "cached") -> str:
    """The id of a new note."""
    response = client.post("/api/notes", json={"title": title, "tags": ["c"]})
    assert response.status_code == 201
    note_id: str = response.json["id"]
    return note_id


def x_cache(client: Any, note_id: str) -> str:
    """The X-Cache header of reading note `note_id`."""
    response = client.get(f"/api/notes/{note_id}")
    assert response.status_code == 200
    status: str = response.headers["X-Cache"]
    return status


def test_reads_miss_then_hit_and_writes_invalidate(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    client = cached_app(make_app, redis_server).test_client()
    note_id = new_note(client)
    assert [x_cache(client, note_id) for _ in range(3)] == ["MISS", "HIT", "HIT"]
    client.patch(f"/api/notes/{note_id}", json={"title": "changed"})
    response = client.get(f"/api/notes/{note_id}")
    assert response.headers["X-Cache"] == "MISS"
    assert response.json is not None and response.json["title"] == "changed"
    assert x_cache(client, note_id) == "HIT"
    assert client.delete(f"/api/notes/{note_id}").status_code == 204
    assert client.get(f"/api/notes/{note_id}").status_code == 404


def test_visits_are_counted_in_redis_and_readiness_reports_it(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    client = cached_app(make_app, redis_server).test_client()
    visits = [client.get("/").json["visits"] for _ in range(2)]  # type: ignore[index]
    assert visits == [1, 2]
    ready = client.get("/readyz").json
    assert ready is not None
    assert ready["status"] == "ready"
    assert ready["checks"] == {"store": "ok", "cache": "ok"}


def test_redis_stopped_mid_test_bypasses_and_writes_still_land(
    make_app: AppFactory, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = cached_app(make_app, redis_server).test_client()
    note_id = new_note(client)
    assert [x_cache(client, note_id) for _ in range(2)] == ["MISS", "HIT"]

    redis_server.stop()

    assert x_cache(client, note_id) == "BYPASS"
    patched = client.patch(f"/api/notes/{note_id}", json={"body": "written"})
    assert patched.status_code == 200
    fresh = client.get(f"/api/notes/{note_id}")
    assert fresh.headers["X-Cache"] == "BYPASS"
    assert fresh.json is not None and fresh.json["body"] == "written"
    other = client.post("/api/notes", json={"title": "during outage"})
    assert other.status_code == 201
    assert client.get("/").json["visits"] is None  # type: ignore[index]
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json is not None and ready.json["checks"]["cache"] == "degraded"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'prework_cache_reads_total{result="bypass"} 2.0' in metrics
    warnings = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line["logger"] == "prework.cache"
    ]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"


def test_cache_comes_back_after_an_outage(redis_server: RedisServer) -> None:
    cache = RedisNotesCache(
        RedisSettings(url=Secret(redis_server.url)), pause_after_error=0.2
    )
    try:
        redis_server.stop()
        assert cache.get("k").status == "BYPASS"
        redis_server.start()  # on the same port: stop() keeps it

        def put_then_hit() -> bool:
            cache.put("k", b"v", cache.get("k"))
            return cache.get("k").status == "HIT"

        assert wait_until(put_then_hit, 10, "the cache to recover")
    finally:
        cache.close()


@pytest.fixture
def cache(redis_server: RedisServer) -> Iterator[RedisNotesCache]:
    """A cache on its own redis-server."""
    opened = RedisNotesCache(RedisSettings(url=Secret(redis_server.url)))
    yield opened
    opened.close()


def test_a_read_that_began_before_an_invalidation_stores_nothing(
    cache: RedisNotesCache,
) -> None:
    # A GET misses and reads the store; a DELETE invalidates; the GET's put comes last.
    early = cache.get("n")
    assert early.status == "MISS"
    cache.invalidate("n")
    assert cache.put("n", b"old", early) is False
    assert cache.get("n").status == "MISS"
    # A read that began after the invalidation is cached as before.
    late = cache.get("n")
    assert cache.put("n", b"new", late) is True
    assert cache.get("n") == CacheRead(b"new", CacheStatus.HIT)


def test_every_invalidation_makes_a_new_generation(cache: RedisNotesCache) -> None:
    first = cache.get("n")
    cache.invalidate("n")
    second = cache.get("n")
    cache.invalidate("n")
    assert len({first.generation, second.generation, cache.get("n").generation}) == 3
    assert cache.put("n", b"v", second) is False
    # Only a MISS carries a generation worth storing against.
    assert cache.put("n", b"v", CacheRead(None, CacheStatus.BYPASS)) is False


def test_password_comes_from_redis_password_file(
    make_app: AppFactory, tmp_path: Path
) -> None:
    password_file = tmp_path / "redis_password"
    password_file.write_text("p4ss-w0rd\n")
    with RedisServer(password="p4ss-w0rd") as redis:
        client = cached_app(
            make_app, redis, REDIS_PASSWORD_FILE=str(password_file)
        ).test_client()
        note_id = new_note(client)
        assert [x_cache(client, note_id) for _ in range(2)] == ["MISS", "HIT"]


def test_a_wrong_password_fails_open(make_app: AppFactory) -> None:
    with RedisServer(password="right") as redis:
        client = cached_app(make_app, redis, REDIS_PASSWORD="wrong").test_client()
        note_id = new_note(client)
        assert x_cache(client, note_id) == "BYPASS"


def test_redis_that_never_ran_fails_open(make_app: AppFactory) -> None:
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    note_id = new_note(client)
    assert x_cache(client, note_id) == "BYPASS"
    assert client.get("/readyz").status_code == 200


def test_throttled_warning_logs_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.throttle")
    warning = ThrottledWarning(logger, interval=3600)
    with caplog.at_level(logging.WARNING, logger="tests.throttle"):
        assert [warning.warn("down") for _ in range(3)] == [True, False, False]
    assert [record.message for record in caplog.records] == ["down"]


def test_a_hit_never_answers_a_stale_etag_across_replicas(
    make_app: AppFactory, redis_server: RedisServer
) -> None:
    """Two replicas share Redis and the store: one edits, the other's cache follows."""
    first = cached_app(make_app, redis_server).test_client()
    second = cached_app(make_app, redis_server).test_client()
    note_id = new_note(first)
    url = f"/api/notes/{note_id}"
    old = first.get(url).headers["ETag"]
    assert first.get(url).headers["X-Cache"] == "HIT"
    edited = second.patch(url, json={"title": "edited"}, headers={"If-Match": old})
    assert edited.status_code == 200
    new = edited.headers["ETag"]
    reads = [first.get(url) for _ in range(2)]
    assert [read.headers["X-Cache"] for read in reads] == ["MISS", "HIT"]
    assert [read.headers["ETag"] for read in reads] == [new, new] != [old, old]
    assert first.get(url, headers={"If-None-Match": old}).status_code == 200
    revalidated = first.get(url, headers={"If-None-Match": new})
    assert (revalidated.status_code, revalidated.headers["X-Cache"]) == (304, "HIT")
    stale = first.patch(url, json={"title": "lost"}, headers={"If-Match": old})
    assert stale.status_code == 412
    final = first.get(url).json
    assert final is not None and final["title"] == "edited"
