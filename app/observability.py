"""Request ids, one JSON log line per request, and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_ID_HEADER = "X-Request-ID"
# The first member of the field when it is 1-64 of [A-Za-z0-9-]: several X-Request-ID
# lines mean one list joined by commas (RFC 9110, 5.3), as nginx 1.23+ and gunicorn
# join them; nginx 1.22 keeps the first line. The same pattern is in the nginx template.
REQUEST_ID = re.compile(r"([A-Za-z0-9-]{1,64})[ \t]*(?:,|\Z)")
# Methods counted under their own name; any other gets one label, so a client cannot
# grow the metrics without bound.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
OTHER_METHOD = "other"
ACCESS_LOG = logging.getLogger("prework.access")
# Attributes every LogRecord has; anything else came in through `extra=`.
RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def request_id_from(header: str | None) -> str:
    """The header's first member if it is 1-64 chars of [A-Za-z0-9-], else a new id."""
    found = REQUEST_ID.match(header or "")
    return found.group(1) if found else uuid.uuid4().hex


def method_label(method: str) -> str:
    """The method's metrics label: its name when known, else OTHER_METHOD."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is a request."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            line["request_id"] = g.get("request_id")
        line.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in RECORD_FIELDS
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """Make the `prework` logger write JSON lines at `level` (a name) to stdout."""
    logger = logging.getLogger("prework")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "prework_http_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "prework_http_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            registry=self.registry,
        )
        self.cache = Counter(
            "prework_cache_reads_total",
            "Note reads by cache result: hit, miss or bypass.",
            ["result"],
            registry=self.registry,
        )

    def exposition(self) -> Response:
        """The metrics in Prometheus text format (all gunicorn workers when set up)."""
        registry = self.registry
        if self.shared_dir is not None:
            # Workers write their values to files there; collect them all.
            registry = CollectorRegistry()
            MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=str(self.shared_dir)
            )
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def start_request() -> None:
    """Give the request its id and start its clock."""
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.started = time.perf_counter()


def finish_request(metrics: Metrics, response: Response) -> Response:
    """Echo the request id, count the request and write its log line."""
    request_id = g.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule else "unmatched"
    metrics.requests.labels(
        route, method_label(request.method), str(response.status_code)
    ).inc()
    metrics.latency.labels(route).observe(elapsed)
    ACCESS_LOG.info(
        "request",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 3),
            "client_ip": request.remote_addr,
        },
    )
    return response


def install_request_hooks(app: Flask, metrics: Metrics) -> None:
    """Request id, metrics and the access log on every request of `app`."""
    app.before_request(start_request)
    app.after_request(lambda response: finish_request(metrics, response))
