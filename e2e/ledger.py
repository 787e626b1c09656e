"""What the steady client wrote, and the check that the store kept exactly that.

Every acknowledged create must be readable with its acknowledged content (unless an
acknowledged delete removed it), no note may exist twice, no acknowledged update may
be lost. A write that failed leaves its note uncertain: either outcome is accepted,
never a third one and never a second note.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import requests

# A note's content as the client sent it; None: the note is deleted.
Content = tuple[str, str, tuple[str, ...]] | None


def content_of(note: dict[str, Any]) -> Content:
    """The part of a note the client wrote."""
    return (note["title"], note["body"], tuple(note["tags"]))


@dataclass
class Ledger:
    """The client's notes (all tagged `tag`) and what each may hold now."""

    tag: str
    # Note id -> every content it may hold (one when the last write was answered).
    notes: dict[str, set[Content]] = field(default_factory=dict)
    # Titles of creates that failed: at most one note may carry each.
    unsure_titles: set[str] = field(default_factory=set)
    count: int = 0
    random: random.Random = field(default_factory=lambda: random.Random(7))

    def new_note(self) -> dict[str, Any]:
        """The fields of the next create (a title no other create uses)."""
        self.count += 1
        return {"title": f"{self.tag} {self.count}", "body": "v0", "tags": [self.tag]}

    def created(self, note: dict[str, Any]) -> None:
        self.notes[note["id"]] = {content_of(note)}

    def live_ids(self) -> list[str]:
        """The notes surely there (their last write answered)."""
        return [i for i, may in self.notes.items() if len(may) == 1 and None not in may]

    def live(self) -> str | None:
        """One of live_ids, or None."""
        ids = self.live_ids()
        return self.random.choice(ids) if ids else None

    def current(self, note_id: str) -> Content:
        (only,) = self.notes[note_id]
        return only

    def wrote(self, note_id: str, after: Content, answered: bool) -> None:
        """An update or delete of `note_id`: certain when answered, else either."""
        before = self.notes[note_id]
        self.notes[note_id] = {after} if answered else before | {after}

    def check(self, base: str) -> list[str]:
        """Every way the store differs from the ledger (empty: clean)."""
        problems: list[str] = []
        seen = listed_notes(base, self.tag)
        ids = [note["id"] for note in seen]
        titles = [note["title"] for note in seen]
        problems += [f"note {i} listed twice" for i in set(ids) if ids.count(i) > 1]
        problems += [f"{t!r} made twice" for t in set(titles) if titles.count(t) > 1]
        stored = {note["id"]: content_of(note) for note in seen}
        for note_id, may in self.notes.items():
            got = stored.pop(note_id, None)
            if got not in may:
                problems.append(f"note {note_id}: {got} is none of {may}")
        for note_id, got in stored.items():
            if got is not None and got[0] not in self.unsure_titles:
                problems.append(f"note {note_id} {got[0]!r} was never acknowledged")
        return problems


def listed_notes(base: str, tag: str) -> list[dict[str, Any]]:
    """Every note tagged `tag`, page by page through the cursor."""
    notes: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params = {"tag": tag, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{base}/api/notes", params=params, timeout=15)
        page.raise_for_status()
        body = page.json()
        notes += body["notes"]
        cursor = body["next_cursor"]
        if cursor is None:
            return notes
    raise AssertionError(f"more than 1000 pages of notes tagged {tag}")
