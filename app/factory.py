"""`create_app` builds the service from its settings; nothing connects at import."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import notes_routes, service_routes
from app.cache import open_cache
from app.config import ConfigError, Settings, load_settings
from app.errors import register_error_handlers
from app.observability import Metrics, configure_logging, install_request_hooks
from app.services import EXTENSION, Services
from app.store import StoreUnavailable, open_store
from app.versions import default_cache_control

PACKAGE_DIR = Path(__file__).resolve().parent
LOG = logging.getLogger("prework.app")


def read_version(settings: Settings) -> str:
    """PREWORK_VERSION_FILE's content, else the VERSION next to the app package."""
    path = settings.version_file or PACKAGE_DIR.parent / "VERSION"
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def settings_from(config: Settings | Mapping[str, str] | None) -> Settings:
    """Settings given, read from a mapping, or read from the process environment."""
    if isinstance(config, Settings):
        return config
    if config is not None:
        return load_settings(config)
    try:
        return load_settings(os.environ)
    except ConfigError as error:
        # Started as a program (gunicorn, flask run): one line, no traceback.
        raise SystemExit(f"prework: configuration error: {error}") from None


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """The Flask app for `config` (Settings, an environment mapping, or os.environ)."""
    settings = settings_from(config)
    configure_logging(settings.log_level)
    app = Flask(__name__.split(".")[0])
    app.config.update(
        SECRET_KEY=settings.secret_key.reveal(),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        TESTING=settings.app_env == "test",
        # Any other Host gets 400 (werkzeug's SecurityError) before routing.
        TRUSTED_HOSTS=list(settings.trusted_hosts or []) or None,
        # OPTIONS is not part of the API (openapi.json): 405 with Allow, as any other
        # method a route does not take, instead of Flask's empty 200 text/html.
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    # `//api//notes` would answer a 308 whose Location werkzeug builds from the
    # client's Host header; such paths are plain 404s instead.
    app.url_map.merge_slashes = False
    store = open_store(
        settings.mongo,
        settings.embedded_store_dir or Path(app.instance_path) / "notes-db",
    )
    try:
        store.ensure_indexes()
    except StoreUnavailable as error:
        # Start anyway: /healthz answers, /readyz says 503 until the store is back.
        LOG.warning("store unreachable at start (%s); indexes created later", error)
    cache = open_cache(settings.redis)
    metrics = Metrics(settings.metrics_dir)
    app.extensions[EXTENSION] = Services(
        settings, store, cache, metrics, read_version(settings)
    )
    install_request_hooks(app, metrics)
    app.after_request(default_cache_control)
    register_error_handlers(app)
    app.register_blueprint(service_routes.blueprint)
    app.register_blueprint(notes_routes.blueprint)
    if settings.trusted_proxy_count:
        # The client IP is the one the trusted proxies (nginx) saw, not the proxy's.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_count
        )
    LOG.info(
        "starting: env=%s store=%s cache=%s",
        settings.app_env,
        store.describe(),
        cache.describe(),
    )
    return app
