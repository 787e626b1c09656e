"""The store contract: the embedded store always, MongoDB when TEST_MONGO_URI is set."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import MongoSettings, Secret
from app.store import (
    KEYS,
    EmbeddedNotesStore,
    MongoNotesStore,
    NoteChanged,
    NotesStore,
    StoredAnswer,
    StoreUnavailable,
)
from devstack import free_port


@pytest.fixture(params=["embedded", "mongodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotesStore]:
    """Each store engine, empty; MongoDB only where TEST_MONGO_URI points at one."""
    if request.param == "embedded":
        embedded = EmbeddedNotesStore(tmp_path / "notes-db")
        try:
            yield embedded
        finally:
            embedded.close()
        return
    uri = os.environ.get("TEST_MONGO_URI")
    if not uri:
        pytest.skip("set TEST_MONGO_URI to run the contract against a real MongoDB")
    database = f"prework_test_{uuid.uuid4().hex[:12]}"
    mongo = MongoNotesStore(MongoSettings(uri=Secret(uri), db=database))
    try:
        mongo.ensure_indexes()
        yield mongo
    finally:
        mongo.client().drop_database(database)
        mongo.close()


def test_create_then_get_returns_the_same_note(store: NotesStore) -> None:
    note = store.create("title", "body", ["a", "b"])
    assert note["created_at"] == note["updated_at"]
    assert store.get(note["id"]) == note


def test_get_of_an_unknown_id_is_none(store: NotesStore) -> None:
    assert store.get("0" * 24) is None


def test_list_is_newest_first_and_pages_with_after(store: NotesStore) -> None:
    ids = [store.create(f"n{i}", "", [])["id"] for i in range(5)]
    first = store.list(None, 3, None)
    assert [n["id"] for n in first] == ids[::-1][:3]
    rest = store.list(None, 3, first[-1]["id"])
    assert [n["id"] for n in rest] == ids[::-1][3:]


def test_list_filters_by_tag(store: NotesStore) -> None:
    tagged = store.create("tagged", "", ["red", "blue"])
    store.create("other", "", ["green"])
    assert [n["id"] for n in store.list("blue", 10, None)] == [tagged["id"]]
    assert store.list("none", 10, None) == []


def test_update_changes_fields_and_updated_at(store: NotesStore) -> None:
    note = store.create("before", "body", [])
    changed = store.update(note["id"], {"title": "after", "tags": ["x"]})
    assert changed is not None
    assert (changed["title"], changed["body"], changed["tags"]) == (
        "after",
        "body",
        ["x"],
    )
    assert changed["updated_at"] >= note["updated_at"]
    assert store.get(note["id"]) == changed


def test_update_of_an_unknown_id_is_none(store: NotesStore) -> None:
    assert store.update("0" * 24, {"title": "x"}) is None


def test_delete_removes_the_note_once(store: NotesStore) -> None:
    note = store.create("gone", "", [])
    assert store.delete(note["id"]) is True
    assert store.get(note["id"]) is None
    assert store.delete(note["id"]) is False


def test_a_conditional_update_applies_only_to_the_version_given(
    store: NotesStore,
) -> None:
    """The version is in the write's filter: one atomic check-and-write."""
    note = store.create("v1", "", ["a", "b"])
    second = store.update(note["id"], {"title": "v2"}, unchanged_since=note)
    assert second is not None and second["title"] == "v2"
    with pytest.raises(NoteChanged):
        store.update(note["id"], {"title": "lost"}, unchanged_since=note)
    assert store.get(note["id"]) == second
    assert store.update("0" * 24, {"title": "x"}, unchanged_since=note) is None


def test_a_conditional_delete_applies_only_to_the_version_given(
    store: NotesStore,
) -> None:
    note = store.create("v1", "", [])
    second = store.update(note["id"], {"body": "changed"})
    with pytest.raises(NoteChanged):
        store.delete(note["id"], unchanged_since=note)
    assert store.get(note["id"]) == second
    assert second is not None
    assert store.delete(note["id"], unchanged_since=second) is True
    assert store.delete(note["id"], unchanged_since=second) is False


def test_ping_answers(store: NotesStore) -> None:
    store.ping()


def test_mongodb_that_is_down_raises_store_unavailable_quickly() -> None:
    """Nothing listens on the port: every call says unavailable, nothing hangs."""
    settings = MongoSettings(
        uri=Secret(f"mongodb://127.0.0.1:{free_port()}/"), timeout_ms=100
    )
    mongo = MongoNotesStore(settings)
    try:
        with pytest.raises(StoreUnavailable):
            mongo.ping()
        with pytest.raises(StoreUnavailable):
            mongo.ensure_indexes()
        with pytest.raises(StoreUnavailable):
            mongo.get("0" * 24)
        with pytest.raises(StoreUnavailable):
            mongo.create("t", "", [])
        with pytest.raises(StoreUnavailable):
            mongo.update("0" * 24, {"title": "t"})
        assert mongo.describe() == "mongodb (database prework)"
    finally:
        mongo.close()


def test_a_mongodb_srv_name_that_does_not_resolve_is_unavailable_not_fatal() -> None:
    mongo = MongoNotesStore(
        MongoSettings(uri=Secret("mongodb+srv://prework.invalid/"), timeout_ms=100)
    )
    try:
        with pytest.raises(StoreUnavailable):
            mongo.ping()
    finally:
        mongo.close()


def test_a_new_key_is_claimed_and_a_repeat_while_it_runs_is_not(
    store: NotesStore,
) -> None:
    now = time.time()
    first = store.claim_key("k", "f1", now, ttl=60, in_flight=30)
    again = store.claim_key("k", "f1", now + 1, ttl=60, in_flight=30)
    assert (first.claimed, first.answer, first.fingerprint) == (True, None, "f1")
    assert (again.claimed, again.answer, again.note_id) == (False, None, first.note_id)


def test_a_finished_key_gives_its_answer_to_every_repeat(store: NotesStore) -> None:
    now = time.time()
    store.claim_key("k", "f1", now, ttl=60, in_flight=30)
    answer = StoredAnswer(201, b'{"id":"x"}', "/api/notes/x")
    store.finish_key("k", answer)
    later = store.claim_key("k", "f2", now + 40, ttl=60, in_flight=30)
    assert (later.claimed, later.answer, later.fingerprint) == (False, answer, "f1")


def test_a_released_or_expired_key_is_claimed_again(store: NotesStore) -> None:
    now = time.time()
    store.claim_key("k", "f1", now, ttl=60, in_flight=30)
    store.release_key("k")
    assert store.claim_key("k", "f2", now, ttl=60, in_flight=30).claimed
    store.finish_key("k", StoredAnswer(200, b"{}", None))
    expired = store.claim_key("k", "f3", now + 61, ttl=60, in_flight=30)
    assert (expired.claimed, expired.fingerprint, expired.answer) == (True, "f3", None)


def test_a_key_held_past_in_flight_is_taken_over_once(store: NotesStore) -> None:
    now = time.time()
    held = store.claim_key("k", "f1", now, ttl=60, in_flight=5)
    taken = store.claim_key("k", "f1", now + 6, ttl=60, in_flight=5)
    assert taken.claimed and taken.note_id == held.note_id
    assert not store.claim_key("k", "f1", now + 7, ttl=60, in_flight=5).claimed


def test_a_create_under_a_kept_id_is_made_once(store: NotesStore) -> None:
    note_id = "0123456789abcdef01234567"
    first = store.create("t", "b", [], note_id)
    assert store.create("t", "b", [], note_id) == first
    assert [n["id"] for n in store.list(None, 10, None)] == [note_id]


def test_expired_keys_are_dropped(store: NotesStore) -> None:
    """MongoDB by its TTL index (within a minute), the embedded store on a new key."""
    now = time.time()
    store.claim_key("old", "f", now - 100, ttl=10, in_flight=5)
    if isinstance(store, MongoNotesStore):
        indexes = store.notes(KEYS).index_information()
        assert any(i.get("expireAfterSeconds") == 0 for i in indexes.values())
        return
    store._next_purge = 0.0  # type: ignore[attr-defined]
    store.claim_key("new", "f", now, ttl=10, in_flight=5)
    with store.collection(name=KEYS) as keys:
        assert keys.find_one({"_id": "old"}) is None
        assert keys.find_one({"_id": "new"}) is not None
