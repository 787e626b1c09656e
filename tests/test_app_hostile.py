"""Input the service must refuse, sent straight to real gunicorn (its 2 workers)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from devstack import GunicornServer
from tests.conftest import served_app
from tests.raw_http import raw_exchange

pytestmark = pytest.mark.slow

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornServer]:
    """gunicorn.conf.py's defaults on the embedded store, as `nox -s serve` runs it;
    one for the module, so each test looks only at the notes it names."""
    with served_app(tmp_path_factory.mktemp("hostile") / "db") as started:
        yield started


def titles(server: GunicornServer) -> list[str]:
    """The titles of every stored note."""
    listed = requests.get(f"{server.url}/api/notes?limit=100", timeout=10).json()
    return [note["title"] for note in listed["notes"]]


def chunked_post(body: bytes, chunk_size: int = 8192) -> bytes:
    """POST /api/notes with `body` in chunks and no Content-Length."""
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + chunk_size]), body[i : i + chunk_size])
        for i in range(0, len(body), chunk_size)
    )
    return (
        b"POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def padded(size: int, title: str = "padded") -> bytes:
    """A valid note of exactly `size` bytes: the title, then spaces."""
    note = b'{"title": "%s"}' % title.encode()
    return note[:-1] + b" " * (size - len(note)) + b"}"


@pytest.mark.parametrize("over", [1, 40_000])
def test_a_chunked_body_over_the_limit_is_413_never_stored(
    server: GunicornServer, over: int
) -> None:
    title = f"over by {over}"
    status, headers, body = raw_exchange(
        server.port, chunked_post(padded(MAX_BODY + over, title))
    )
    assert status == 413, body
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert title not in titles(server)


def test_a_chunked_invalid_body_over_the_limit_is_413_not_400(
    server: GunicornServer,
) -> None:
    status, _, body = raw_exchange(server.port, chunked_post(b"[" * (MAX_BODY + 10)))
    assert status == 413, body


def test_a_chunked_body_at_the_limit_is_stored(server: GunicornServer) -> None:
    status, _, body = raw_exchange(server.port, chunked_post(padded(MAX_BODY)))
    assert status == 201, body
    assert json.loads(body)["title"] == "padded"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"title": "\\ud800"}',
        b'{"title": "ok", "body": "a\\udfffb"}',
        b'{"title": "\xff\xfe not utf-8"}',
    ],
)
def test_text_that_is_not_unicode_is_422(
    server: GunicornServer, payload: bytes
) -> None:
    before = len(titles(server))
    response = requests.post(
        f"{server.url}/api/notes",
        data=payload,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_failed"
    assert len(titles(server)) == before


def test_a_patch_with_a_lone_surrogate_is_422_and_changes_nothing(
    server: GunicornServer,
) -> None:
    note = requests.post(f"{server.url}/api/notes", json={"title": "t"}, timeout=10)
    url = f"{server.url}/api/notes/{note.json()['id']}"
    response = requests.patch(
        url,
        data=b'{"body": "\\ud83d"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"body"}
    assert requests.get(url, timeout=10).json()["body"] == ""
