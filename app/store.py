"""Where notes live: MongoDB, or the embedded on-disk store with the pymongo API."""

from __future__ import annotations

import fcntl
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypedDict

from bson import ObjectId
from pymongo import DESCENDING, MongoClient
from pymongo.collection import Collection as PyMongoCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from app.config import MongoSettings

NOTE_ID = re.compile(r"^[0-9a-f]{24}$")
# Every stored field of a note but its id: equal in all of them means the same version.
VERSIONED_FIELDS = ("title", "body", "tags", "created_at", "updated_at")


class Note(TypedDict):
    """A note as the API shows it."""

    id: str
    title: str
    body: str
    tags: list[str]
    created_at: str
    updated_at: str


class StoreUnavailable(Exception):
    """The store did not answer (MongoDB down or unreachable); the client may retry."""


class NoteChanged(Exception):
    """A conditional write found the note changed since the version it was given."""


@dataclass(frozen=True)
class StoredAnswer:
    """The answer kept for an idempotency key: status, JSON body, Location."""

    status: int
    body: bytes
    location: str | None


@dataclass(frozen=True)
class KeyRecord:
    """An idempotency key as the store keeps it, and whether this request holds it."""

    fingerprint: str
    # The id a create under this key makes (a takeover makes the same note).
    note_id: str
    answer: StoredAnswer | None
    claimed: bool


NOTES = "notes"
# Seconds between two purges of expired keys by one embedded store process.
PURGE_INTERVAL = 60.0
# Idempotency keys: MongoDB drops expired ones by a TTL index on `expire_at`.
KEYS = "idempotency_keys"


class Collection(Protocol):
    """The part of a pymongo collection the notes store uses (montydb has it too)."""

    def insert_one(self, document: dict[str, Any]) -> Any: ...

    def find_one(self, filter: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def find(self, filter: Mapping[str, Any]) -> Any: ...

    def update_one(
        self, filter: Mapping[str, Any], update: Mapping[str, Any]
    ) -> Any: ...

    def delete_one(self, filter: Mapping[str, Any]) -> Any: ...

    def delete_many(self, filter: Mapping[str, Any]) -> Any: ...


def new_note_id() -> str:
    """A fresh note id (ids sort in creation order)."""
    return str(ObjectId())


def now_iso() -> str:
    """The current UTC time as fixed-width ISO 8601 (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_note_id(text: str) -> bool:
    """True when `text` has the shape of a note id (24 lowercase hex digits)."""
    return bool(NOTE_ID.fullmatch(text))


def version_filter(note_id: str, version: Note | None) -> dict[str, Any]:
    """The query matching note `note_id`, and with `version` only while every stored
    field still equals that version's."""
    query: dict[str, Any] = {"_id": note_id}
    if version is not None:
        fields: Mapping[str, object] = version
        query.update({name: fields[name] for name in VERSIONED_FIELDS})
    return query


def to_answer(document: Mapping[str, Any]) -> StoredAnswer | None:
    """The kept answer of a key's stored document, None while it runs."""
    answer = document.get("answer")
    if answer is None:
        return None
    return StoredAnswer(
        answer["status"], answer["body"].encode(), answer.get("location")
    )


def to_note(document: Mapping[str, Any]) -> Note:
    """The API form of a stored document."""
    return Note(
        id=str(document["_id"]),
        title=document["title"],
        body=document["body"],
        tags=list(document["tags"]),
        created_at=document["created_at"],
        updated_at=document["updated_at"],
    )


class NeverRaised(Exception):
    """The abstract store's duplicate key error: it has no engine to raise one."""


class NotesStore:
    """Notes on a pymongo-compatible collection; subclasses say how to reach it."""

    kind = "abstract"
    # What the engine raises for an insert whose `_id` is taken.
    duplicate_error: type[Exception] = NeverRaised

    @contextmanager
    def collection(
        self, write: bool = False, name: str = NOTES
    ) -> Iterator[Collection]:
        """The collection `name`, with driver errors turned into StoreUnavailable;
        everything done inside one `write=True` block is atomic."""
        raise NotImplementedError
        yield  # pragma: no cover

    def describe(self) -> str:
        """Which store this is, for the start-up log line (never a secret)."""
        return self.kind

    def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""

    def ensure_indexes(self) -> None:
        """Create the indexes the queries use, where the engine supports them."""

    def close(self) -> None:
        return None

    def create(
        self, title: str, body: str, tags: list[str], note_id: str | None = None
    ) -> Note:
        """A new note; with `note_id` (an idempotency key's), the note already made
        under that id when there is one."""
        stamp = now_iso()
        document = {
            "_id": note_id or new_note_id(),
            "title": title,
            "body": body,
            "tags": tags,
            "created_at": stamp,
            "updated_at": stamp,
        }
        made = None
        with self.collection(write=True) as notes:
            if note_id is None:
                notes.insert_one(dict(document))
            elif not self._insert_new(notes, dict(document)):
                made = notes.find_one({"_id": note_id})
        return to_note(made or document)

    def get(self, note_id: str) -> Note | None:
        """The note with `note_id`, or None."""
        with self.collection() as notes:
            document = notes.find_one({"_id": note_id})
        return to_note(document) if document else None

    def list(self, tag: str | None, limit: int, after: str | None) -> list[Note]:
        """Up to `limit` notes, newest first, optionally by `tag`, after id `after`."""
        query: dict[str, Any] = {}
        if tag is not None:
            query["tags"] = tag
        if after is not None:
            query["_id"] = {"$lt": after}
        with self.collection() as notes:
            documents = list(notes.find(query).sort([("_id", DESCENDING)]).limit(limit))
        return [to_note(document) for document in documents]

    def update(
        self,
        note_id: str,
        changes: Mapping[str, Any],
        unchanged_since: Note | None = None,
    ) -> Note | None:
        """Apply `changes` to a note and return it, or None when there is none.

        With `unchanged_since`, only if the note is still exactly that version, else
        NoteChanged: the version is part of the update's filter, so the check and
        the write are one atomic operation (MongoDB's, or the embedded store's lock).
        """
        update = {"$set": {**changes, "updated_at": now_iso()}}
        query = version_filter(note_id, unchanged_since)
        with self.collection(write=True) as notes:
            if notes.update_one(query, update).matched_count == 0:
                return self._missed(notes, note_id, unchanged_since)
            document = notes.find_one({"_id": note_id})
        return to_note(document) if document else None

    def delete(self, note_id: str, unchanged_since: Note | None = None) -> bool:
        """Delete a note; True when there was one. With `unchanged_since`, only if the
        note is still exactly that version (atomically), else NoteChanged."""
        query = version_filter(note_id, unchanged_since)
        with self.collection(write=True) as notes:
            deleted: int = notes.delete_one(query).deleted_count
            if deleted == 0:
                self._missed(notes, note_id, unchanged_since)
        return deleted == 1

    @staticmethod
    def _missed(notes: Collection, note_id: str, unchanged_since: Note | None) -> None:
        """After a write matched nothing: NoteChanged when the note exists but is
        another version, else None (there is no such note)."""
        if unchanged_since is not None and notes.find_one({"_id": note_id}):
            raise NoteChanged(note_id)
        return None

    def claim_key(
        self, key: str, fingerprint: str, now: float, ttl: int, in_flight: float
    ) -> KeyRecord:
        """The record of idempotency key `key`, claimed for this request when it is
        new, expired, or held longer than `in_flight` seconds by a request that never
        finished (its replica lost); atomic, as every write block."""
        fresh = self._key_document(key, fingerprint, now, ttl, in_flight)
        # The insert first: a new key, the usual case, costs no lookup.
        with self.collection(write=True, name=KEYS) as keys:
            if self._insert_new(keys, fresh):
                self._purge_expired(keys, now)
                return KeyRecord(fingerprint, fresh["note_id"], None, True)
            document = keys.find_one({"_id": key})
            if document is None or document["expires"] <= now:
                if document is not None:
                    keys.delete_one({"_id": key, "expires": document["expires"]})
                claimed = self._insert_new(keys, fresh)
                return KeyRecord(fingerprint, fresh["note_id"], None, claimed)
            answer = to_answer(document)
            claimed = False
            if answer is None and document["fingerprint"] == fingerprint:
                claimed = document["locked_until"] <= now and self._take_over(
                    keys, document, now + in_flight
                )
        return KeyRecord(document["fingerprint"], document["note_id"], answer, claimed)

    def finish_key(self, key: str, answer: StoredAnswer) -> None:
        """Keep `answer` for the repeats of `key`."""
        kept = {
            "status": answer.status,
            "body": answer.body.decode(),
            "location": answer.location,
        }
        with self.collection(write=True, name=KEYS) as keys:
            keys.update_one({"_id": key}, {"$set": {"answer": kept}})

    def release_key(self, key: str) -> None:
        """Forget `key` while it has no answer: its request failed."""
        with self.collection(write=True, name=KEYS) as keys:
            keys.delete_one({"_id": key, "answer": None})

    def _key_document(
        self, key: str, fingerprint: str, now: float, ttl: int, in_flight: float
    ) -> dict[str, Any]:
        return {
            "_id": key,
            "fingerprint": fingerprint,
            "note_id": new_note_id(),
            "answer": None,
            "locked_until": now + in_flight,
            "expires": now + ttl,
        }

    def _insert_new(self, collection: Collection, document: dict[str, Any]) -> bool:
        """Insert `document`; False when its `_id` is taken."""
        try:
            collection.insert_one(document)
        except self.duplicate_error:
            return False
        return True

    def _purge_expired(self, keys: Collection, now: float) -> None:
        """Drop expired keys where the engine does not (MongoDB's TTL index does)."""

    @staticmethod
    def _take_over(keys: Collection, document: Mapping[str, Any], until: float) -> bool:
        """Hold a key whose request never finished, unless another repeat did first."""
        held = {"_id": document["_id"], "locked_until": document["locked_until"]}
        taken: int = keys.update_one(
            held, {"$set": {"locked_until": until}}
        ).matched_count
        return taken == 1


class MongoNotesStore(NotesStore):
    """Notes in MongoDB, through pymongo, with bounded timeouts."""

    kind = "mongodb"
    duplicate_error = DuplicateKeyError

    def __init__(self, settings: MongoSettings) -> None:
        if settings.uri is None:
            raise ValueError("MongoNotesStore needs MONGO_URI")
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": settings.timeout_ms,
            "connectTimeoutMS": settings.timeout_ms,
            "socketTimeoutMS": settings.timeout_ms,
            "appname": "prework",
        }
        # TLS options go to pymongo as given; certificates are always verified.
        if settings.tls_ca_file is not None:
            options["tlsCAFile"] = str(settings.tls_ca_file)
        if settings.tls_cert_key_file is not None:
            options["tlsCertificateKeyFile"] = str(settings.tls_cert_key_file)
        self._uri = settings.uri
        self._options = options
        self._db_name = settings.db
        self._client: MongoClient[dict[str, Any]] | None = None
        self._client_lock = threading.Lock()
        self._indexed = False

    def describe(self) -> str:
        """Which store this is (the URI carries credentials, so it is not shown)."""
        return f"mongodb (database {self._db_name})"

    @contextmanager
    def driver_errors(self) -> Iterator[None]:
        """Turn any pymongo error into StoreUnavailable."""
        try:
            yield
        except PyMongoError as error:
            raise StoreUnavailable(type(error).__name__) from error

    def client(self) -> MongoClient[dict[str, Any]]:
        """The client, made on first use: a mongodb+srv:// URI resolves DNS right
        away, and a MongoDB that is missing at start must not stop start-up."""
        with self._client_lock, self.driver_errors():
            if self._client is None:
                self._client = MongoClient(self._uri.reveal(), **self._options)
            return self._client

    def notes(self, name: str = NOTES) -> PyMongoCollection[dict[str, Any]]:
        return self.client()[self._db_name][name]

    @contextmanager
    def collection(
        self, write: bool = False, name: str = NOTES
    ) -> Iterator[Collection]:
        """The collection `name`; each operation is atomic on the server (the
        idempotency key's claim relies on `_id`'s uniqueness and filtered updates)."""
        notes = self.notes(name)
        with self.driver_errors():
            yield notes

    def _key_document(
        self, key: str, fingerprint: str, now: float, ttl: int, in_flight: float
    ) -> dict[str, Any]:
        document = super()._key_document(key, fingerprint, now, ttl, in_flight)
        # What the TTL index reads: MongoDB deletes the key within a minute after.
        document["expire_at"] = datetime.fromtimestamp(now + ttl, UTC)
        return document

    def ping(self) -> None:
        """Ask MongoDB to answer a ping (and create the indexes once it does)."""
        client = self.client()
        with self.driver_errors():
            client.admin.command("ping")
        if not self._indexed:
            self.ensure_indexes()

    def ensure_indexes(self) -> None:
        """Index tags, the list filter; the list sorts and pages on `_id`, which
        MongoDB always indexes (ids are made in creation order)."""
        notes, keys = self.notes(), self.notes(KEYS)
        with self.driver_errors():
            notes.create_index("tags")
            keys.create_index("expire_at", expireAfterSeconds=0)
        self._indexed = True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class EmbeddedNotesStore(NotesStore):
    """Notes in montydb's SQLite engine on local disk: pymongo's API, no server."""

    kind = "embedded"

    def __init__(self, directory: Path) -> None:
        from montydb import MontyClient, set_storage
        from montydb.errors import DuplicateKeyError as MontyDuplicateKeyError

        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "monty.storage.cfg").exists():
            set_storage(str(directory), storage="sqlite", use_bson=False)
        self._directory = directory
        self._lock_file = directory / "prework.lock"
        self._client = MontyClient(str(directory))
        self._database = self._client["prework"]
        self._next_purge = 0.0
        self.duplicate_error = MontyDuplicateKeyError
        # montydb's SQLite engine shares one connection attribute between threads.
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"embedded ({self._directory})"

    @contextmanager
    def collection(
        self, write: bool = False, name: str = NOTES
    ) -> Iterator[Collection]:
        """The collection `name`, one thread at a time, and across processes (every
        gunicorn worker) one writer or many readers: montydb reads a whole document
        and writes it back, so two unlocked writers would undo each other."""
        with self._lock, self._lock_file.open("a") as lock:
            # Opened per use: a descriptor inherited through fork would share the lock.
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            yield self._database[name]

    def _purge_expired(self, keys: Collection, now: float) -> None:
        """montydb has no TTL index: drop expired keys, after an insert (montydb
        cannot delete from a database file not made yet), at most once a minute per
        process (the delete reads every key)."""
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL
            keys.delete_many({"expires": {"$lte": now}})

    def close(self) -> None:
        self._client.close()


def open_store(settings: MongoSettings, embedded_dir: Path) -> NotesStore:
    """MongoDB when a URI is set, else the embedded store under `embedded_dir`."""
    if settings.uri is None:
        return EmbeddedNotesStore(embedded_dir)
    return MongoNotesStore(settings)
