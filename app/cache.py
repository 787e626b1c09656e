"""The read-through cache: Redis when configured, failing open on any Redis error."""

from __future__ import annotations

import logging
import threading
import time
from enum import StrEnum

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.config import RedisSettings

LOG = logging.getLogger("prework.cache")
KEY_PREFIX = "prework:"
VISITS_KEY = f"{KEY_PREFIX}visits"


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


class NotesCache:
    """No cache at all (REDIS_URL unset): every read bypasses it."""

    kind = "off"

    def describe(self) -> str:
        """Which cache this is, for the start-up log line (never a secret)."""
        return self.kind

    def get(self, key: str) -> tuple[bytes | None, CacheStatus]:
        """The cached bytes under `key` and whether that was a hit."""
        return None, CacheStatus.BYPASS

    def put(self, key: str, value: bytes) -> None:
        """Cache `value` under `key` for the configured TTL."""

    def invalidate(self, key: str) -> None:
        """Forget `key`."""

    def count_visit(self) -> int | None:
        """Add one to the visits counter and return it; None without a cache."""
        return None

    def health(self) -> str:
        """ok, degraded (configured but not answering) or off."""
        return "off"

    def close(self) -> None:
        """Release connections."""


class RedisNotesCache(NotesCache):
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
        self._pause = pause_after_error
        self._paused_until = 0.0
        self._warning = ThrottledWarning(LOG, warn_interval)

    def _available(self) -> bool:
        # After an error, skip Redis briefly so an outage costs no timeout per request.
        return time.monotonic() >= self._paused_until

    def _failed(self, error: redis.RedisError) -> None:
        self._paused_until = time.monotonic() + self._pause
        self._warning.warn(f"redis unavailable, bypassing the cache: {error}")

    def get(self, key: str) -> tuple[bytes | None, CacheStatus]:
        """The cached bytes under `key`: HIT, MISS, or BYPASS when Redis fails."""
        if not self._available():
            return None, CacheStatus.BYPASS
        try:
            value = self._client.get(KEY_PREFIX + key)
        except redis.RedisError as error:
            self._failed(error)
            return None, CacheStatus.BYPASS
        if value is None:
            return None, CacheStatus.MISS
        return bytes(value), CacheStatus.HIT  # type: ignore[arg-type]

    def put(self, key: str, value: bytes) -> None:
        """Cache `value` for the TTL; a Redis error is only logged."""
        if not self._available():
            return
        try:
            self._client.set(KEY_PREFIX + key, value, ex=self._ttl)
        except redis.RedisError as error:
            self._failed(error)

    def invalidate(self, key: str) -> None:
        """Forget `key`; if Redis is down, the TTL bounds how stale it can get."""
        try:
            self._client.delete(KEY_PREFIX + key)
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
        """Close the connection pool."""
        self._client.close()


def open_cache(settings: RedisSettings) -> NotesCache:
    """Redis when REDIS_URL is set, else no cache."""
    if settings.url is None:
        return NotesCache()
    return RedisNotesCache(settings)
