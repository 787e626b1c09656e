"""Every error response, made in one place: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from app.store import StoreUnavailable

LOG = logging.getLogger("prework.errors")
RETRY_AFTER_SECONDS = 5

# werkzeug's exception names are fine messages; these are the stable codes clients see.
HTTP_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "validation_failed",
    431: "header_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the API answers on purpose, with its status and stable code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "error")
        self.message = message
        self.fields = dict(fields or {})


def error_document(
    code: str, message: str, fields: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The `error` member of every error body (also gunicorn's own, app/serving.py)."""
    error: dict[str, object] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    return error


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    beside: Mapping[str, object] | None = None,
) -> Response:
    """The JSON error body every failure uses; `beside` adds members next to
    `error` (e.g. /readyz's checks)."""
    error = error_document(code, message, fields)
    response = jsonify({**(beside or {}), "error": error})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def unavailable_response(
    message: str, beside: Mapping[str, object] | None = None
) -> Response:
    """503 with Retry-After: a dependency is down and the client may retry."""
    return error_response(
        503,
        HTTP_CODES[503],
        message,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        beside=beside,
    )


def handle_api_error(error: ApiError) -> Response:
    """An ApiError raised by a route."""
    return error_response(error.status, error.code, error.message, fields=error.fields)


def handle_http_exception(error: HTTPException) -> Response:
    """werkzeug's 404, 405, 413 and friends, as JSON (keeping Allow on a 405)."""
    status = error.code or 500
    headers = {
        name: value for name, value in error.get_headers() if name.lower() == "allow"
    }
    message = (error.description or error.name).strip()
    return error_response(
        status, HTTP_CODES.get(status, "http_error"), message, headers=headers
    )


def handle_store_unavailable(error: StoreUnavailable) -> Response:
    """The store did not answer in time."""
    LOG.warning("store unavailable: %s", error)
    return unavailable_response("the note store is unavailable; retry later")


def handle_unexpected(error: Exception) -> Response:
    """Anything else: logged with its trace, answered with the request id only.

    HTTPExceptions never get here: Flask picks their more specific handler.
    """
    LOG.exception("unhandled exception")
    request_id = g.get("request_id", "unknown")
    return error_response(
        500, HTTP_CODES[500], f"internal error (request id {request_id})"
    )


def register_error_handlers(app: Flask) -> None:
    """Answer every error of `app` as JSON."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(StoreUnavailable, handle_store_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
