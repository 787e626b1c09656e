"""Property-based: generated requests get no 5xx; every answer matches openapi.json."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from app import create_app

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "app" / "openapi.json").read_text()
)
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
TAG = st.from_regex(r"\A[a-z0-9-]{1,32}\Z")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)
NOTE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "title": st.one_of(st.text(min_size=1, max_size=200), TEXT, st.integers()),
        "body": st.one_of(st.text(max_size=300), st.none()),
        "tags": st.one_of(st.lists(TAG, max_size=22), st.lists(TEXT, max_size=3)),
        "extra": JSON,
    },
)
VALID_NOTE = st.fixed_dictionaries(
    {"title": st.text(min_size=1, max_size=200)},
    optional={
        "body": st.text(max_size=300),
        "tags": st.lists(TAG, max_size=20, unique=True),
    },
)
BODY = st.one_of(
    VALID_NOTE.map(lambda value: ("application/json", json.dumps(value).encode())),
    NOTE_LIKE.map(lambda value: ("application/json", json.dumps(value).encode())),
    JSON.map(lambda value: ("application/json", json.dumps(value).encode())),
    st.tuples(st.sampled_from(["application/json", "text/plain", ""]), st.binary()),
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the module (hypothesis runs many examples against it)."""
    directory = tmp_path_factory.mktemp("openapi")
    built = create_app(
        {
            "APP_ENV": "test",
            "EMBEDDED_STORE_DIR": str(directory / "db"),
            "LOG_LEVEL": "WARNING",
            "MAX_BODY_BYTES": "2048",
        }
    )
    client = built.test_client()
    for index in range(3):
        client.post("/api/notes", json={"title": f"seed {index}", "tags": ["seed"]})
    yield built


@cache
def validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at `pointer`, resolving refs in the whole document."""
    schema: Any = DOCUMENT
    for part in pointer.strip("/").split("/"):
        schema = schema[part.replace("~1", "/")]
    return Draft202012Validator({**schema, "components": DOCUMENT["components"]})


def resolve(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Follow one local $ref: (pointer, object)."""
    pointer = item["$ref"].removeprefix("#")
    found: Any = DOCUMENT
    for part in pointer.strip("/").split("/"):
        found = found[part]
    return pointer, found


def check_against_document(template: str, method: str, response: TestResponse) -> None:
    """No 5xx but 503; status documented; headers and body match the document."""
    assert response.status_code < 500, response.get_data(as_text=True)
    assert re.fullmatch(r"[A-Za-z0-9-]{1,64}", response.headers["X-Request-ID"])
    path_item = DOCUMENT["paths"][template]
    if method not in path_item:
        assert response.status_code == 405
        validator("/components/schemas/Error").validate(response.json)
        return
    responses = path_item[method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method.upper()} {template}: {status} undocumented"
    documented = responses[status]
    if "$ref" in documented:
        documented = resolve(documented)[1]
    for name, header in documented.get("headers", {}).items():
        if "$ref" in header:
            header = resolve(header)[1]
        # Every header is expected unless the document says `required: false`.
        if header.get("required") is False and name not in response.headers:
            continue
        value, schema = response.headers[name], header["schema"]
        if "enum" in schema:
            assert value in schema["enum"]
        assert re.fullmatch(schema.get("pattern", ".*").strip("^$"), value)
    content = documented.get("content")
    if content is None:
        assert response.get_data() == b""
        return
    media_type = next(iter(content))
    assert response.mimetype == media_type
    if media_type == "application/json":
        schema = content["application/json"]["schema"]
        Draft202012Validator({**schema, "components": DOCUMENT["components"]}).validate(
            response.json
        )


def existing_ids(app: Flask) -> list[str]:
    page = app.test_client().get("/api/notes?limit=100").json
    assert page is not None
    return [note["id"] for note in page["notes"]]


NOTE_ID = st.one_of(
    st.just("seed"),
    st.from_regex(r"\A[0-9a-f]{24}\Z"),
    # A "/" makes another path even as %2F (WSGI decodes it), so no note route at all.
    TEXT.filter(lambda text: text not in ("", ".", "..") and "/" not in text),
)


@EXAMPLES
@given(body=BODY)
def test_create_note(app: Flask, body: tuple[str, bytes]) -> None:
    content_type, data = body
    response = app.test_client().post(
        "/api/notes", data=data, content_type=content_type or None
    )
    check_against_document("/api/notes", "post", response)


@EXAMPLES
@given(
    query=st.fixed_dictionaries(
        {},
        optional={
            "tag": st.one_of(TAG, TEXT),
            "limit": st.one_of(st.integers(-5, 150).map(str), TEXT),
            "cursor": st.one_of(TEXT, st.from_regex(r"\A[A-Za-z0-9_-]{32}\Z")),
        },
    )
)
def test_list_notes(app: Flask, query: dict[str, str]) -> None:
    response = app.test_client().get(f"/api/notes?{urlencode(query)}")
    check_against_document("/api/notes", "get", response)


@EXAMPLES
@given(
    method=st.sampled_from(["get", "patch", "delete", "put", "post"]),
    note_id=NOTE_ID,
    body=BODY,
    pick=st.integers(0, 1000),
)
def test_note_by_id(
    app: Flask, method: str, note_id: str, body: tuple[str, bytes], pick: int
) -> None:
    if note_id == "seed":
        ids = existing_ids(app) or ["0" * 24]
        note_id = ids[pick % len(ids)]
    content_type, data = body
    response = app.test_client().open(
        f"/api/notes/{quote(note_id, safe='')}",
        method=method.upper(),
        data=data,
        content_type=content_type or None,
    )
    check_against_document("/api/notes/{note_id}", method, response)


@EXAMPLES
@given(
    path=st.sampled_from(["/", "/healthz", "/readyz", "/version", "/metrics"]),
    method=st.sampled_from(["get", "post", "delete"]),
)
def test_service_endpoints(app: Flask, path: str, method: str) -> None:
    response = app.test_client().open(path, method=method.upper())
    check_against_document(path, method, response)
