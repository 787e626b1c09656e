"""The read-through cache: Redis when configured, failing open on any Redis error."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.config import RedisSettings

LOG = logging.getLogger("prework.cache")
KEY_PREFIX = "prework:"
VISITS_KEY = f"{KEY_PREFIX}visits"
# A generation outlives any request (gunicorn's timeout is 30 s); being random, a new
# one never equals an old one, even after the old one expired.
GENERATION_TTL = 3600
# KEYS: value, generation. ARGV: the generation the reader saw ("" if none), the
# value, the TTL. Sets the value only when no invalidation happened since that read.
SET_IF_GENERATION = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def value_key(key: str) -> str:
    return KEY_PREFIX + key


def generation_key(key: str) -> str:
    return f"{KEY_PREFIX}generation:{key}"


class CacheStatus(StrEnum):
    """What the cache did for one read (the X-Cache header)."""

    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"


class ThrottledWarning:
    """Log a warning at most once per `interval` s, so an outage cannot flood logs."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -interval
        self._lock = threading.Lock()

    def warn(self, message: str) -> bool:
        """Log `message` unless a warning was logged less than `interval` s ago."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                return False
            self._last = now
        self._logger.warning(message)
        return True


@dataclass(frozen=True)
class CacheRead:
    """One cache read: the cached bytes (None unless a HIT), what happened, and the
    key's generation at that moment, which a later `put` must still find."""

    value: bytes | None
    status: CacheStatus
    generation: bytes = b""


class NotesCache(Protocol):
    """A read-through cache of note bodies, safe against writes racing reads."""

    kind: str

    def describe(self) -> str: ...

    def get(self, key: str) -> CacheRead: ...

    def put(self, key: str, value: bytes, read: CacheRead) -> bool:
        """Cache `value`, read from the store after `read`, unless `key` was
        invalidated since: a value older than the newest write is never stored."""
        ...

    def invalidate(self, key: str) -> None: ...

    def count_visit(self) -> int | None:
        """Add one to the visits counter and return it; None without a cache."""
        ...

    def health(self) -> str:
        """ok, degraded (configured but not answering) or off."""
        ...

    def close(self) -> None: ...


class NoCache:
    """REDIS_URL unset: every read bypasses the cache."""

    kind = "off"

    def describe(self) -> str:
        return self.kind

    def get(self, key: str) -> CacheRead:
        return CacheRead(None, CacheStatus.BYPASS)

    def put(self, key: str, value: bytes, read: CacheRead) -> bool:
        return False

    def invalidate(self, key: str) -> None:
        return None

    def count_visit(self) -> int | None:
        return None

    def health(self) -> str:
        return "off"

    def close(self) -> None:
        return None


class RedisNotesCache:
    """Redis with short timeouts; a Redis error means bypass, never a failed request."""

    kind = "redis"

    def __init__(
        self,
        settings: RedisSettings,
        socket_timeout: float = 0.25,
        pause_after_error: float = 1.0,
        warn_interval: float = 30.0,
    ) -> None:
        if settings.url is None:
            raise ValueError("RedisNotesCache needs REDIS_URL")
        password = settings.password.reveal() if settings.password else None
        # A password inside REDIS_URL wins over REDIS_PASSWORD (redis-py's rule).
        self._client = redis.Redis.from_url(
            settings.url.reveal(),
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._ttl = settings.cache_ttl_seconds
        self._set_if_generation = self._client.register_script(SET_IF_GENERATION)
        self._pause = pause_after_error
        self._paused_until = 0.0
        self._warning = ThrottledWarning(LOG, warn_interval)

    def describe(self) -> str:
        return self.kind

    def _available(self) -> bool:
        # After an error, skip Redis briefly so an outage costs no timeout per request.
        return time.monotonic() >= self._paused_until

    def _failed(self, error: redis.RedisError) -> None:
        self._paused_until = time.monotonic() + self._pause
        self._warning.warn(f"redis unavailable, bypassing the cache: {error}")

    def get(self, key: str) -> CacheRead:
        """HIT, MISS (with the generation a `put` must match), or BYPASS on error."""
        if not self._available():
            return CacheRead(None, CacheStatus.BYPASS)
        try:
            # One round trip, one atomic read: the value and its generation.
            found = self._client.mget(value_key(key), generation_key(key))
        except redis.RedisError as error:
            self._failed(error)
            return CacheRead(None, CacheStatus.BYPASS)
        # No decode_responses: redis-py returns bytes (its stubs also allow str).
        value, generation = cast(list[bytes | None], found)
        if value is None:
            return CacheRead(None, CacheStatus.MISS, generation or b"")
        return CacheRead(value, CacheStatus.HIT)

    def put(self, key: str, value: bytes, read: CacheRead) -> bool:
        """Store `value` for the TTL only if `key`'s generation is still the one
        `read` saw (checked and set in one script); a Redis error is only logged."""
        if read.status is not CacheStatus.MISS or not self._available():
            return False
        try:
            stored = self._set_if_generation(
                keys=[value_key(key), generation_key(key)],
                args=[read.generation, value, self._ttl],
            )
        except redis.RedisError as error:
            self._failed(error)
            return False
        return bool(stored)

    def invalidate(self, key: str) -> None:
        """Forget `key` and give it a new generation, in one transaction, so that no
        read that started earlier can store its copy; if Redis is down, the TTL
        bounds how stale the cache can get."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                new_generation = secrets.token_bytes(12)
                pipe.set(generation_key(key), new_generation, ex=GENERATION_TTL)
                pipe.delete(value_key(key))
                pipe.execute()
        except redis.RedisError as error:
            self._failed(error)

    def count_visit(self) -> int | None:
        """INCR the visits counter; None when Redis fails."""
        if not self._available():
            return None
        try:
            return int(self._client.incr(VISITS_KEY))
        except redis.RedisError as error:
            self._failed(error)
            return None

    def health(self) -> str:
        """ok when Redis answers a PING, else degraded."""
        try:
            self._client.ping()
        except redis.RedisError as error:
            self._failed(error)
            return "degraded"
        self._paused_until = 0.0
        return "ok"

    def close(self) -> None:
        self._client.close()


def open_cache(settings: RedisSettings) -> NotesCache:
    """Redis when REDIS_URL is set, else no cache."""
    if settings.url is None:
        return NoCache()
    return RedisNotesCache(settings)
