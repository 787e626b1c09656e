"""Validation of note payloads and list parameters; every bad field is named."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from flask import Request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import ApiError

TAG = re.compile(r"^[a-z0-9-]{1,32}$")
TITLE_MAX = 200
BODY_MAX = 10_000
TAGS_MAX = 20
LIMIT_DEFAULT = 20
LIMIT_MAX = 100
LIMIT_TEXT = re.compile(r"^[0-9]{1,4}$")
# 24 bytes in base64url without padding, as openapi.json's `cursor` says.
CURSOR = re.compile(r"^[A-Za-z0-9_-]{32}$")
CURSOR_PROBLEM = "must be 32 characters of A-Z, a-z, 0-9, _ and -"
NOTE_FIELDS = ("title", "body", "tags")
UNICODE_PROBLEM = "must be Unicode text (a lone surrogate is not)"


def body_bytes(request: Request) -> bytes:
    """The request body: 413 past MAX_BODY_BYTES whatever the framing, 400 when its
    framing is broken (a malformed chunk, a body cut short), 408 when the client
    stops sending it (GUNICORN_CLIENT_TIMEOUT)."""
    try:
        return read_body(request)
    except TimeoutError:
        raise ApiError(408, "the request body was not received in time") from None
    except (ParseException, OSError):
        # gunicorn's chunk parser (ParseException) or a connection that ended early.
        raise ApiError(400, "the request body is malformed or incomplete") from None


def read_body(request: Request) -> bytes:
    """The body as sent, up to one byte past MAX_BODY_BYTES.

    werkzeug stops reading a body without Content-Length (chunked) at the limit and
    returns what it read, so such a body is read here up to one byte past it.
    """
    limit = request.max_content_length
    environ = request.environ
    if (
        limit is None
        or request.content_length is not None
        or "wsgi.input_terminated" not in environ
    ):
        return request.get_data(cache=False)  # 413 when Content-Length is too big
    raw: bytes = environ["wsgi.input"].read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw


def json_object_body(request: Request) -> dict[str, Any]:
    """The JSON object sent: 415 if not JSON, 400 if malformed, 422 if not an object
    or not Unicode text."""
    if not request.is_json:
        raise ApiError(415, "send the body as Content-Type: application/json")
    raw = body_bytes(request)
    try:
        payload = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(
            422,
            "the request body is not UTF-8 text",
            fields={"request": "not UTF-8 text"},
        ) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiError(
            422,
            "the request body must be a JSON object",
            fields={"request": "not a JSON object"},
        )
    return payload


def is_unicode(text: str) -> bool:
    """False when `text` holds a lone surrogate (JSON's "\\ud800"), which no UTF-8
    store, BSON included, can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def title_problem(value: object) -> str | None:
    """Why `value` is not a title, or None."""
    if not isinstance(value, str) or not 1 <= len(value) <= TITLE_MAX:
        return f"must be a string of 1-{TITLE_MAX} characters"
    return None if is_unicode(value) else UNICODE_PROBLEM


def body_problem(value: object) -> str | None:
    """Why `value` is not a note body, or None."""
    if not isinstance(value, str) or len(value) > BODY_MAX:
        return f"must be a string of at most {BODY_MAX} characters"
    return None if is_unicode(value) else UNICODE_PROBLEM


def tags_problem(value: object) -> str | None:
    """Why `value` is not a tag list, or None."""
    if not isinstance(value, list) or len(value) > TAGS_MAX:
        return f"must be a list of at most {TAGS_MAX} tags"
    if not all(isinstance(tag, str) and TAG.fullmatch(tag) for tag in value):
        return "each tag must be 1-32 characters of a-z, 0-9 and -"
    if len(set(value)) != len(value):
        return "tags must be distinct"
    return None


CHECKS = {"title": title_problem, "body": body_problem, "tags": tags_problem}


def note_fields(payload: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """The note fields of `payload`, checked; raise 422 naming every bad field."""
    problems = {name: "unknown field" for name in payload if name not in NOTE_FIELDS}
    for name, check in CHECKS.items():
        if name in payload:
            problem = check(payload[name])
            if problem:
                problems[name] = problem
        elif name == "title" and not partial:
            problems[name] = "required"
    if partial and not problems and not payload:
        problems["request"] = "give at least one of title, body, tags"
    if problems:
        named = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        raise ApiError(422, f"invalid note: {named}", fields=problems)
    return {name: payload[name] for name in NOTE_FIELDS if name in payload}


def encode_cursor(note_id: str) -> str:
    """The cursor for the page after the note `note_id`: its id in base64url."""
    return base64.urlsafe_b64encode(note_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The position inside a cursor; 422 unless it has CURSOR's form.

    Any such cursor is a position in the id order (the notes listed are those whose
    id sorts below it), so exactly the strings openapi.json's pattern describes are
    accepted, whoever made them.
    """
    if not CURSOR.fullmatch(cursor):
        raise ApiError(422, "invalid cursor", fields={"cursor": CURSOR_PROBLEM})
    return base64.urlsafe_b64decode(cursor).decode("latin-1")


def list_parameters(args: Mapping[str, str]) -> tuple[str | None, int, str | None]:
    """tag, limit and the cursor's note id of a list request; 422 naming bad ones."""
    problems: dict[str, str] = {}
    tag = args.get("tag")
    if tag is not None and not TAG.fullmatch(tag):
        problems["tag"] = "must be 1-32 characters of a-z, 0-9 and -"
    raw_limit = args.get("limit", str(LIMIT_DEFAULT))
    limit = int(raw_limit) if LIMIT_TEXT.fullmatch(raw_limit) else 0
    if not 1 <= limit <= LIMIT_MAX:
        problems["limit"] = f"must be an integer from 1 to {LIMIT_MAX}"
    after = None
    cursor = args.get("cursor")
    if cursor is not None:
        try:
            after = decode_cursor(cursor)
        except ApiError as error:
            problems.update(error.fields)
    if problems:
        named = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
        raise ApiError(422, f"invalid parameters: {named}", fields=problems)
    return tag, limit, after
