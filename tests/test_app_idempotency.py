"""Idempotency-Key on POST and PATCH: a repeat gets the first answer, never a second
write; two apps on one store directory stand for two replicas."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.idempotency import IN_FLIGHT_SECONDS, fingerprint, scoped_key
from app.services import EXTENSION, Services
from tests.conftest import AppFactory

NOTE = {"title": "Groceries", "body": "milk", "tags": ["home"]}


def post(client: FlaskClient, key: str, **fields: Any) -> Any:
    return client.post(
        "/api/notes", json={**NOTE, **fields}, headers={"Idempotency-Key": key}
    )


def count_notes(client: FlaskClient) -> int:
    return len(client.get("/api/notes?limit=100").json["notes"])  # type: ignore[index]


def test_a_repeated_post_gets_the_first_answer_and_makes_no_second_note(
    client: FlaskClient,
) -> None:
    first = post(client, "k-1")
    again = post(client, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert (again.headers["Location"], again.headers["ETag"]) == (
        first.headers["Location"],
        first.headers["ETag"],
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count_notes(client) == 1


def test_the_key_is_seen_by_another_replica(make_app: AppFactory) -> None:
    one, other = make_app().test_client(), make_app().test_client()
    first = post(one, "shared")
    assert post(other, "shared").json == first.json
    assert count_notes(other) == 1


def test_posts_without_a_key_or_with_other_keys_are_new_notes(
    client: FlaskClient,
) -> None:
    client.post("/api/notes", json=NOTE)
    client.post("/api/notes", json=NOTE)
    post(client, "a")
    post(client, "b")
    assert count_notes(client) == 4


def test_a_repeat_with_another_body_is_422(client: FlaskClient) -> None:
    post(client, "k")
    response = post(client, "k", title="Other")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert count_notes(client) == 1


def test_a_repeat_while_the_first_runs_is_409(client: FlaskClient) -> None:
    parts: Services = client.application.extensions[EXTENSION]
    # The first request holds the key (claimed, not finished) as a running one does.
    parts.store.claim_key(
        scoped_key("POST", "/api/notes", "busy"),
        fingerprint("POST", "/api/notes", NOTE),
        now=time.time(),
        ttl=60,
        in_flight=IN_FLIGHT_SECONDS,
    )
    response = post(client, "busy")
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "idempotency_key_in_use"


def test_a_key_held_by_a_lost_request_is_taken_over_without_a_second_note(
    client: FlaskClient,
) -> None:
    """A replica lost mid-request: after IN_FLIGHT_SECONDS a repeat runs it again,
    under the same note id, so a note it made already is the answer."""
    parts: Services = client.application.extensions[EXTENSION]
    scoped = scoped_key("POST", "/api/notes", "lost")
    past = time.time() - IN_FLIGHT_SECONDS - 1
    held = parts.store.claim_key(
        scoped, fingerprint("POST", "/api/notes", NOTE), now=past, ttl=600, in_flight=1
    )
    made = parts.store.create("Groceries", "milk", ["home"], held.note_id)
    response = post(client, "lost")
    assert response.status_code == 201
    assert response.json["id"] == made["id"]
    assert count_notes(client) == 1


def test_an_expired_key_is_a_new_request(make_app: AppFactory) -> None:
    client = make_app(IDEMPOTENCY_KEY_TTL_SECONDS="1").test_client()
    first = post(client, "short")
    parts: Services = client.application.extensions[EXTENSION]
    scoped = scoped_key("POST", "/api/notes", "short")
    # As if the second request came after the key's expiry.
    later = parts.store.claim_key(
        scoped, fingerprint("POST", "/api/notes", NOTE), time.time() + 2, 1, 30
    )
    assert later.claimed and later.answer is None
    assert later.note_id != first.json["id"]


def test_a_failed_request_frees_its_key(client: FlaskClient) -> None:
    missing = "/api/notes/" + "0" * 24
    headers = {"Idempotency-Key": "patch-1"}
    assert (
        client.patch(missing, json={"title": "x"}, headers=headers).status_code == 404
    )
    note = client.post("/api/notes", json=NOTE).json
    path = f"/api/notes/{note['id']}"  # type: ignore[index]
    first = client.patch(path, json={"title": "new"}, headers=headers)
    assert first.status_code == 200
    again = client.patch(path, json={"title": "new"}, headers=headers)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_repeated_patch_is_not_applied_twice(client: FlaskClient) -> None:
    note = client.post("/api/notes", json=NOTE).json
    path = f"/api/notes/{note['id']}"  # type: ignore[index]
    first = client.patch(path, json={"title": "A"}, headers={"Idempotency-Key": "p"})
    client.patch(path, json={"title": "B"})
    again = client.patch(path, json={"title": "A"}, headers={"Idempotency-Key": "p"})
    assert again.json == first.json
    assert client.get(path).json["title"] == "B"  # type: ignore[index]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "is empty"),
        ('""', "is empty"),
        ("x" * 256, "longer than 255"),
        ("caf\u00e9", "visible ASCII"),
        ("two words", "visible ASCII"),
    ],
)
def test_a_bad_key_is_a_clear_400(client: FlaskClient, key: str, why: str) -> None:
    response = client.post(
        "/api/notes",
        json=NOTE,
        headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    body: Any = response.json
    assert response.status_code == 400
    assert body["error"]["code"] == "bad_request"
    assert why in body["error"]["message"]
    assert count_notes(client) == 0


def test_a_quoted_key_is_the_same_key(client: FlaskClient) -> None:
    """The draft's header is a Structured Field string: "k" and k are one key."""
    first = post(client, '"quoted"')
    assert post(client, "quoted").json == first.json
    assert count_notes(client) == 1
