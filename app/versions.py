"""Note versions on the wire: strong ETags, conditional requests, Cache-Control.

A note's ETag is a digest of the exact bytes of its JSON representation, which carry
`updated_at`: every update gives a new ETag, the same bytes (from the store or from
the cache, on any replica) always the same one, so a cache HIT can never answer with
an ETag that does not belong to its body.
"""

from __future__ import annotations

import hashlib

from flask import Request, Response

from app.errors import ApiError

# Clients may keep a note but must ask again before using it (a 304 when unchanged).
NOTE_CACHE_CONTROL = "no-cache"
# Every other answer: nothing to keep.
DEFAULT_CACHE_CONTROL = "no-store"


def etag_of(body: bytes) -> str:
    """The strong ETag (without quotes) of a representation's bytes."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def note_response(body: bytes, status: int = 200) -> Response:
    """A note's JSON bytes as a response, with their ETag and NOTE_CACHE_CONTROL."""
    response = Response(body, status=status, mimetype="application/json")
    response.set_etag(etag_of(body))
    response.headers["Cache-Control"] = NOTE_CACHE_CONTROL
    return response


def not_modified(request: Request, body: bytes) -> bool:
    """True when If-None-Match names the ETag of `body` (weak comparison, RFC 9110)."""
    return request.if_none_match.contains_weak(etag_of(body))


def require_match(request: Request, body: bytes) -> None:
    """412 unless If-Match is absent, `*`, or names the ETag of `body` (strong
    comparison: a weak ETag never matches)."""
    if "If-Match" not in request.headers:
        return
    if not request.if_match.contains(etag_of(body)):
        raise precondition_failed()


def precondition_failed() -> ApiError:
    """The 412 for a note that is no longer the version If-Match names."""
    return ApiError(412, "the note changed since the ETag in If-Match: GET it again")


def default_cache_control(response: Response) -> Response:
    """DEFAULT_CACHE_CONTROL on every response that has no Cache-Control of its own."""
    response.headers.setdefault("Cache-Control", DEFAULT_CACHE_CONTROL)
    return response
