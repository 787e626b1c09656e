"""Writes safe to resend: the `Idempotency-Key` header on POST and PATCH.

As the IETF HTTPAPI draft "The Idempotency-Key HTTP Header Field" describes: the first
request with a key runs and its answer is kept in the store (so every replica sees
it); a repeat with the same key and the same request gets that answer again
(`Idempotent-Replayed: true`), a repeat with another request 422, a repeat while the
first is still running 409. Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Request, Response

from app.errors import ApiError
from app.services import Services
from app.store import KeyRecord, StoredAnswer
from app.versions import note_response

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Visible ASCII but the quote and the backslash: a bare key, or the content of the
# draft's Structured Field string ("..."), which may not escape anything here.
KEY = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# How long a request may hold its key before a repeat may take it over (a replica
# that died mid-request): gunicorn's worker timeout (gunicorn.conf.py).
IN_FLIGHT_SECONDS = 30.0


def request_key(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one; 400 for a bad one."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise bad_key("is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise bad_key(f"is longer than {MAX_KEY_LENGTH} characters")
    if not KEY.fullmatch(key):
        raise bad_key("may hold only visible ASCII characters, without '\"' and '\\'")
    return key


def bad_key(why: str) -> ApiError:
    return ApiError(400, f"{HEADER} {why}", fields={HEADER: why})


def scoped_key(method: str, path: str, key: str) -> str:
    """The store's id of `key` sent with `method` on `path`: scoped to the route (a
    client's keys for two notes' PATCHes are unrelated), hashed to a fixed length."""
    return hashlib.blake2b(
        f"{method} {path} {key}".encode(), digest_size=16
    ).hexdigest()


def fingerprint(method: str, path: str, payload: Mapping[str, Any]) -> str:
    """What makes two requests the same request: method, path and the JSON body sent
    (as data: key order and spacing aside)."""
    canonical = json.dumps([method, path, payload], sort_keys=True)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def run_once(
    parts: Services,
    request: Request,
    key: str,
    payload: Mapping[str, Any],
    run: Callable[[str], Response],
) -> Response:
    """`run(note_id)`'s answer the first time `key` is used, that answer again for a
    repeat. `note_id` is the id a create under this key makes: a repeat that takes
    over after a lost replica makes no second note."""
    scoped = scoped_key(request.method, request.path, key)
    sent = fingerprint(request.method, request.path, payload)
    record = parts.store.claim_key(
        scoped,
        sent,
        now=time.time(),
        ttl=parts.settings.idempotency_ttl_seconds,
        in_flight=IN_FLIGHT_SECONDS,
    )
    if record.fingerprint != sent:
        raise ApiError(
            422,
            f"this {HEADER} was used for another request: use a new key",
            code="idempotency_key_reused",
        )
    if record.answer is not None:
        return replay(record.answer)
    if not record.claimed:
        raise ApiError(
            409,
            f"a request with this {HEADER} is still in progress: retry later",
            code="idempotency_key_in_use",
        )
    return answered_once(parts, scoped, record, run)


def answered_once(
    parts: Services, scoped: str, record: KeyRecord, run: Callable[[str], Response]
) -> Response:
    """Run the claimed request; keep a success for repeats, free the key otherwise
    (the client may send the same key again, fixed)."""
    try:
        response = run(record.note_id)
    except BaseException:
        parts.store.release_key(scoped)
        raise
    location = response.headers.get("Location")
    parts.store.finish_key(
        scoped, StoredAnswer(response.status_code, response.get_data(), location)
    )
    return response


def replay(answer: StoredAnswer) -> Response:
    """The kept answer, marked as a replay."""
    response = note_response(answer.body, answer.status)
    if answer.location is not None:
        response.headers["Location"] = answer.location
    response.headers[REPLAYED_HEADER] = "true"
    return response
