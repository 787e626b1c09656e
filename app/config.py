"""The service settings: read once from the environment, validated, secrets hidden."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from typing import Literal, cast

from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

AppEnv = Literal["production", "development", "test"]
APP_ENVS: tuple[AppEnv, ...] = ("production", "development", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
# A host name or address, or `.domain` for it and all its subdomains (Flask's form).
TRUSTED_HOST = re.compile(r"^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$|^\[[0-9A-Fa-f:.]+\]$")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable, not a secret."""


class Secret:
    """A value that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself, for the one driver that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class MongoSettings:
    """Where MongoDB is and how to reach it; `uri` None means the embedded store."""

    uri: Secret | None = None
    db: str = "prework"
    tls_ca_file: Path | None = None
    tls_cert_key_file: Path | None = None
    timeout_ms: int = 2000


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is; `url` None turns the cache off."""

    url: Secret | None = None
    password: Secret | None = None
    cache_ttl_seconds: int = 60


@dataclass(frozen=True)
class ServerSettings:
    """How gunicorn serves the app (read by gunicorn.conf.py)."""

    bind: str = "0.0.0.0:8000"
    workers: int = 2
    threads: int = 4
    forwarded_allow_ips: str = "*"
    # Seconds a request may go without the client sending or reading a byte.
    client_timeout: int = 10


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, typed; built by `load_settings`."""

    app_env: AppEnv = "development"
    secret_key: Secret = field(default_factory=lambda: Secret("not-a-secret"))
    mongo: MongoSettings = field(default_factory=MongoSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    trusted_proxy_count: int = 1
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    embedded_store_dir: Path | None = None
    version_file: Path | None = None
    git_sha: str | None = None
    # None: every Host is answered (no response ever carries a URL made from it).
    trusted_hosts: tuple[str, ...] | None = None
    # Where gunicorn's workers share their metrics; None: each worker reports its own.
    metrics_dir: Path | None = None
    # How long an Idempotency-Key's answer is kept for repeats (app/idempotency.py).
    idempotency_ttl_seconds: int = 24 * 3600
    server: ServerSettings = field(default_factory=ServerSettings)


def read_secret(environ: Mapping[str, str], name: str) -> Secret | None:
    """`NAME` or the content of the file named by `NAME_FILE` (exclusive), or None."""
    value = environ.get(name, "")
    file_name = environ.get(f"{name}_FILE", "")
    if value and file_name:
        raise ConfigError(f"{name} and {name}_FILE are both set: set only one")
    if file_name:
        try:
            # Docker secret files usually end with a newline that is not part of it.
            value = Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ConfigError(
                f"{name}_FILE: cannot read {file_name}: {error.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"{name}_FILE: {file_name} is empty")
    return Secret(value) if value else None


def read_int(
    environ: Mapping[str, str], name: str, default: int, low: int, high: int
) -> int:
    """An integer setting within [low, high]."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is outside {low}..{high}")
    return value


def read_choice(
    environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]
) -> str:
    """A setting that must be one of `choices` (compared case-insensitively)."""
    raw = environ.get(name, "").strip() or default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{name}: {raw!r} is not one of {', '.join(choices)}")


def read_existing_file(environ: Mapping[str, str], name: str) -> Path | None:
    """A path setting that must name a readable file when set."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"{name}: {raw} is not a readable file")
    return path


def read_path(environ: Mapping[str, str], name: str) -> Path | None:
    """An optional path setting."""
    raw = environ.get(name, "").strip()
    return Path(raw) if raw else None


def check_scheme(name: str, secret: Secret | None, schemes: tuple[str, ...]) -> None:
    """Refuse a URL secret with an unknown scheme, without showing its value."""
    if secret is not None and not secret.reveal().startswith(schemes):
        raise ConfigError(f"{name}: must start with {' or '.join(schemes)}")


# URI options that turn certificate checks off; the CA belongs in MONGO_TLS_CA_FILE.
INSECURE_TLS_OPTIONS = frozenset(
    {"tlsallowinvalidcertificates", "tlsallowinvalidhostnames", "tlsinsecure"}
)


def check_mongo_uri(uri: Secret | None) -> None:
    """Refuse a malformed mongodb:// URI in pymongo's words, which never quote it,
    and any URI that turns TLS certificate checks off.

    A mongodb+srv:// URI is otherwise left to the client: parsing it resolves DNS.
    """
    if uri is None:
        return
    for name, value in parse_qsl(urlsplit(uri.reveal()).query):
        if name.lower() in INSECURE_TLS_OPTIONS and value.lower() != "false":
            raise ConfigError(
                f"MONGO_URI: {name} turns certificate checks off; "
                "give the CA bundle as MONGO_TLS_CA_FILE instead"
            )
    if not uri.reveal().startswith("mongodb://"):
        return
    try:
        parse_uri(uri.reveal(), warn=True)
    except (PyMongoError, ValueError) as error:
        raise ConfigError(f"MONGO_URI: not a valid MongoDB URI: {error}") from None


def read_hosts(environ: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """A comma-separated list of host names; None when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    hosts = tuple(host.strip().lower() for host in raw.split(","))
    for host in hosts:
        if not TRUSTED_HOST.fullmatch(host):
            raise ConfigError(
                f"{name}: {host!r} is not a host name, address or .domain"
            )
    return hosts


def read_mongo(environ: Mapping[str, str]) -> MongoSettings:
    """The MongoDB settings."""
    uri = read_secret(environ, "MONGO_URI")
    check_scheme("MONGO_URI", uri, MONGO_SCHEMES)
    check_mongo_uri(uri)
    db = environ.get("MONGO_DB", "").strip() or "prework"
    if not DB_NAME.fullmatch(db):
        raise ConfigError(f"MONGO_DB: {db!r} is not a valid database name")
    return MongoSettings(
        uri=uri,
        db=db,
        tls_ca_file=read_existing_file(environ, "MONGO_TLS_CA_FILE"),
        tls_cert_key_file=read_existing_file(environ, "MONGO_TLS_CERT_KEY_FILE"),
        timeout_ms=read_int(environ, "MONGO_TIMEOUT_MS", 2000, 50, 60000),
    )


def read_redis(environ: Mapping[str, str]) -> RedisSettings:
    """The Redis settings; REDIS_PASSWORD is combined with REDIS_URL."""
    url = read_secret(environ, "REDIS_URL")
    check_scheme("REDIS_URL", url, REDIS_SCHEMES)
    password = read_secret(environ, "REDIS_PASSWORD")
    if password is not None and url is None:
        raise ConfigError("REDIS_PASSWORD: set without REDIS_URL")
    return RedisSettings(
        url=url,
        password=password,
        cache_ttl_seconds=read_int(environ, "CACHE_TTL_SECONDS", 60, 1, 86400),
    )


def read_server(environ: Mapping[str, str]) -> ServerSettings:
    """gunicorn's settings."""
    return ServerSettings(
        bind=environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000",
        workers=read_int(environ, "GUNICORN_WORKERS", 2, 1, 64),
        threads=read_int(environ, "GUNICORN_THREADS", 4, 1, 256),
        forwarded_allow_ips=environ.get("FORWARDED_ALLOW_IPS", "").strip() or "*",
        client_timeout=read_int(environ, "GUNICORN_CLIENT_TIMEOUT", 10, 1, 300),
    )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate every setting; raise ConfigError naming the bad variable."""
    app_env = cast(AppEnv, read_choice(environ, "APP_ENV", "development", APP_ENVS))
    secret_key = read_secret(environ, "SECRET_KEY")
    mongo = read_mongo(environ)
    if app_env == "production":
        if secret_key is None:
            raise ConfigError("SECRET_KEY: required when APP_ENV=production")
        if mongo.uri is None:
            raise ConfigError("MONGO_URI: required when APP_ENV=production")
    return Settings(
        app_env=app_env,
        # Outside production a per-process key is fine: the service keeps no sessions.
        secret_key=secret_key or Secret(secrets.token_hex(32)),
        mongo=mongo,
        redis=read_redis(environ),
        trusted_proxy_count=read_int(environ, "TRUSTED_PROXY_COUNT", 1, 0, 10),
        max_body_bytes=read_int(environ, "MAX_BODY_BYTES", 64 * 1024, 1024, 1 << 24),
        log_level=read_choice(environ, "LOG_LEVEL", "INFO", LOG_LEVELS),
        embedded_store_dir=read_path(environ, "EMBEDDED_STORE_DIR"),
        version_file=read_path(environ, "PREWORK_VERSION_FILE"),
        git_sha=environ.get("GIT_SHA", "").strip() or None,
        trusted_hosts=read_hosts(environ, "TRUSTED_HOSTS"),
        metrics_dir=read_path(environ, "PROMETHEUS_MULTIPROC_DIR"),
        idempotency_ttl_seconds=read_int(
            environ, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600, 1, 30 * 24 * 3600
        ),
        server=read_server(environ),
    )
