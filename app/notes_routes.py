"""The notes API: /api/notes, with GET by id read through the cache, and versions
(ETag, If-None-Match, If-Match: app/versions.py) on every note."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request, url_for

from app.errors import ApiError
from app.idempotency import request_key, run_once
from app.services import Services, services
from app.store import Note, NoteChanged, is_note_id
from app.validation import encode_cursor, json_object_body, list_parameters, note_fields
from app.versions import (
    note_response,
    not_modified,
    precondition_failed,
    require_match,
)

CACHE_HEADER = "X-Cache"
blueprint = Blueprint("notes", __name__, url_prefix="/api/notes")


def checked_id(note_id: str) -> str:
    """`note_id` when it has the shape of an id; 404 otherwise (never a store call)."""
    if not is_note_id(note_id):
        raise ApiError(404, f"no note {note_id[:64]!r}")
    return note_id


def not_found(note_id: str) -> ApiError:
    """The 404 for an id that has the right shape but no note."""
    return ApiError(404, f"no note {note_id!r}")


def note_json(note: Note) -> bytes:
    """A note as the bytes of its JSON response (also what the cache keeps)."""
    return json.dumps(note, separators=(",", ":")).encode()


@blueprint.post("")
def create_note() -> Response:
    """Create a note: 201 with Location and its ETag."""
    key = request_key(request)
    payload = json_object_body(request)
    fields = note_fields(payload, partial=False)
    parts = services()

    def create(note_id: str | None) -> Response:
        note = parts.store.create(
            fields["title"], fields.get("body", ""), fields.get("tags", []), note_id
        )
        response = note_response(note_json(note), 201)
        response.headers["Location"] = url_for("notes.get_note", note_id=note["id"])
        return response

    if key is None:
        return create(None)
    return run_once(parts, request, key, payload, create)


@blueprint.get("")
def list_notes() -> Response:
    """A page of notes, newest first, optionally by tag; `next_cursor` continues."""
    tag, limit, after = list_parameters(request.args)
    # One extra note tells whether another page exists.
    notes = services().store.list(tag, limit + 1, after)
    next_cursor = encode_cursor(notes[limit - 1]["id"]) if len(notes) > limit else None
    return jsonify(notes=notes[:limit], next_cursor=next_cursor)


@blueprint.get("/<note_id>")
def get_note(note_id: str) -> Response:
    """One note, read through the cache (X-Cache: HIT, MISS or BYPASS); 304 when
    If-None-Match names its ETag."""
    checked_id(note_id)
    parts = services()
    read = parts.cache.get(note_id)
    parts.metrics.cache.labels(read.status.lower()).inc()
    body = read.value
    if body is None:
        note = parts.store.get(note_id)
        if note is None:
            raise not_found(note_id)
        body = note_json(note)
        parts.cache.put(note_id, body, read)
    response = note_response(body)
    if not_modified(request, body):
        response.status_code = 304
        response.set_data(b"")
    response.headers[CACHE_HEADER] = read.status.value
    return response


def current_version(parts: Services, note_id: str) -> Note | None:
    """The note as stored when If-Match applies to it (412 if it names another
    version); None without If-Match."""
    if "If-Match" not in request.headers:
        return None
    note = parts.store.get(note_id)
    if note is None:
        raise not_found(note_id)
    require_match(request, note_json(note))
    return note


@blueprint.patch("/<note_id>")
def update_note(note_id: str) -> Response:
    """Change some fields of a note; with If-Match only if it is still that version
    (else 412). The cached copy is dropped."""
    checked_id(note_id)
    key = request_key(request)
    payload = json_object_body(request)
    changes = note_fields(payload, partial=True)
    parts = services()

    def update(_: str) -> Response:
        version = current_version(parts, note_id)
        try:
            note = parts.store.update(note_id, changes, unchanged_since=version)
        except NoteChanged:
            raise precondition_failed() from None
        parts.cache.invalidate(note_id)
        if note is None:
            raise not_found(note_id)
        return note_response(note_json(note))

    if key is None:
        return update("")
    return run_once(parts, request, key, payload, update)


@blueprint.delete("/<note_id>")
def delete_note(note_id: str) -> tuple[str, int]:
    """Delete a note: 204; with If-Match only if it is still that version (else
    412). The cached copy is dropped."""
    checked_id(note_id)
    parts = services()
    version = current_version(parts, note_id)
    try:
        deleted = parts.store.delete(note_id, unchanged_since=version)
    except NoteChanged:
        raise precondition_failed() from None
    parts.cache.invalidate(note_id)
    if not deleted:
        raise not_found(note_id)
    return "", 204
