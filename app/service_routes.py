"""Service endpoints: identity, liveness, readiness, version, metrics, API document."""

from __future__ import annotations

import socket
from importlib import resources

from flask import Blueprint, Response, jsonify

from app.errors import unavailable_response
from app.services import services
from app.store import StoreUnavailable

SERVICE_NAME = "prework"
blueprint = Blueprint("service", __name__)


@blueprint.get("/")
def index() -> Response:
    """Name, version, the replica that answered, and the visits counter."""
    parts = services()
    return jsonify(
        service=SERVICE_NAME,
        version=parts.version,
        hostname=socket.gethostname(),
        visits=parts.cache.count_visit(),
    )


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers; no dependency is called."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> Response:
    """Ready when the store answers; Redis is reported but never makes it unready.

    The replica and its version are named, so a deploy asking through nginx can tell
    that every replica is ready (deploy/verify.py).
    """
    parts = services()
    checks = {"store": "ok", "cache": parts.cache.health()}
    identity = {"hostname": socket.gethostname(), "version": parts.version}
    try:
        parts.store.ping()
    except StoreUnavailable:
        checks["store"] = "down"
        return unavailable_response(
            "the note store is down",
            beside={**identity, "status": "unready", "checks": checks},
        )
    return jsonify(status="ready", checks=checks, **identity)


@blueprint.get("/version")
def version() -> Response:
    """The VERSION file's content and the commit (GIT_SHA) or null."""
    parts = services()
    return jsonify(version=parts.version, commit=parts.settings.git_sha)


@blueprint.get("/metrics")
def metrics() -> Response:
    return services().metrics.exposition()


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API, as kept in the repository."""
    document = resources.files("app").joinpath("openapi.json").read_bytes()
    return Response(document, mimetype="application/json")
