"""A commit range as one `git log` text, scanned with regular expressions.

Reading 100 000 commits must not cost a Python object each: the bump level and
the release commits are found by a handful of regex scans over the whole text,
and records are parsed one by one only where a changelog needs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from release.ownership import BUMP_TRAILER, RELEASE_COMMIT_PREFIX, SYNC_TRAILER
from release.version import BumpLevel, MalformedVersion, Version

# One record per commit, NUL-terminated (`git log -z`): "<sha> <parents>\n",
# then the message with a unit separator (0x1f) marking its subject line, so a
# pattern can tell a subject from a footer without splitting the text.
LOG_FORMAT = "--format=%H %P%n%x1f%B"
SUBJECT = "\x1f"
# The headers conventional.parse_message reads (subjects are stripped). Each
# pattern starts with a literal, which lets `re` skip ahead at C speed, and the
# scans run only when a plain substring test says they can match.
_SCOPE = r"(?:\([^()\r\n]+\))?"
_BREAKING_HEADER = re.compile(rf"\x1f[^\S\n]*[A-Za-z][A-Za-z0-9_-]*{_SCOPE}!:[ \t]+\S")
_BREAKING_FOOTER = re.compile(r"\nBREAKING[ -]CHANGE:")
_FEATURE_HEADER = re.compile(rf"\x1f[^\S\n]*[Ff][Ee][Aa][Tt]{_SCOPE}!?:[ \t]+\S")
_RELEASE_SUBJECT = re.compile(r"\x1fchore\(release\): (\S+)")


class CommitRecord(NamedTuple):
    """One commit as the release tool needs it."""

    sha: str
    is_merge: bool
    message: str


class CommitLog:
    """The commits of one range, newest first, as git printed them."""

    def __init__(self, text: str) -> None:
        # git puts one SUBJECT mark per record (and NUL cannot be in a message):
        # any more were written into a message and must not read as a subject.
        records = text.count("\0") + (0 if text.endswith("\0") else 1)
        if text.count(SUBJECT) > records:
            text = "\0".join(_unmarked(chunk) for chunk in text.split("\0"))
        self.text = text

    def __bool__(self) -> bool:
        return bool(self.text.strip("\0\n"))

    def records(self) -> Iterator[CommitRecord]:
        """Every commit, newest first."""
        for chunk in self.text.split("\0"):
            record = _parse_record(chunk)
            if record is not None:
                yield record

    def head(self) -> CommitRecord | None:
        """The newest commit of the range (HEAD when the range ends at HEAD)."""
        return _parse_record(self.text.split("\0", 1)[0])

    def bump_level(self) -> BumpLevel:
        """The highest bump a counted commit asks for; PATCH when none asks more.

        The release tool's own commits never ask for more than a patch, except
        when a person wrote a footer into one; `_counted` skips those, and merge
        commits, whose own title and footers are "anything else" (patch).
        """
        if self._counted(_BREAKING_HEADER, "!:") or self._counted(
            _BREAKING_FOOTER, "\nBREAKING"
        ):
            return BumpLevel.MAJOR
        if self._counted(_FEATURE_HEADER, ":"):
            return BumpLevel.MINOR
        return BumpLevel.PATCH

    def released_versions(self) -> list[tuple[str, Version]]:
        """(sha, version) of every release commit that wrote a release `X.Y.Z`."""
        return [(sha, v) for sha, v in self._own_versions() if v.is_release]

    def built_versions(self) -> list[Version]:
        """Every dev build the tool committed in the range, reverted or not."""
        return [
            version for _, version in self._own_versions() if not version.is_release
        ]

    def _own_versions(self) -> list[tuple[str, Version]]:
        """(sha, version) of every commit of the tool's that wrote a version."""
        found: list[tuple[str, Version]] = []
        if SUBJECT + RELEASE_COMMIT_PREFIX not in self.text:
            return found
        for match in _RELEASE_SUBJECT.finditer(self.text):
            try:
                version = Version.parse(match[1])
            except MalformedVersion:
                continue
            if self._is_own(match.start()):
                found.append((self._record_sha(match.start()), version))
        return found

    def _counted(self, pattern: re.Pattern[str], needed: str) -> bool:
        """True when `pattern` matches in a commit that is not the tool's own."""
        if needed not in self.text:
            return False
        for match in pattern.finditer(self.text):
            position = match.start()
            if not self._is_merge(position) and not self._is_own(position):
                return True
        return False

    def _is_merge(self, position: int) -> bool:
        """True when the record around `position` has more than one parent."""
        start = self._record_start(position)
        header = self.text[start : self.text.index("\n", start + 1)]
        return len(header.split()) > 2

    def _is_own(self, position: int) -> bool:
        """True when the record around `position` has the tool's title and trailer."""
        start = self._record_start(position)
        subject = self.text.index(SUBJECT, start) + 1
        if not self.text.startswith(RELEASE_COMMIT_PREFIX, subject):
            return False
        end = self.text.find("\0", subject)
        record = self.text[subject : end if end >= 0 else len(self.text)]
        return any(
            f"\n{trailer}\n" in f"{record}\n"
            for trailer in (BUMP_TRAILER, SYNC_TRAILER)
        )

    def _record_start(self, position: int) -> int:
        return self.text.rfind("\0", 0, position) + 1

    def _record_sha(self, position: int) -> str:
        start = self._record_start(position)
        header = self.text[start : self.text.index("\n", start)]
        return header.strip().split(" ", 1)[0]


def decode_messages(raw: bytes) -> str:
    """git's output as text, whatever bytes the messages hold; never raises.

    `git log --encoding=UTF-8` re-encodes every commit that names its encoding;
    one that names none (or an unknown one) comes out as it was written. Those
    records alone are read as cp1252, else latin-1 (which reads any byte).
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "\0".join(_decoded(record) for record in raw.split(b"\0"))


def _decoded(record: bytes) -> str:
    for encoding in ("utf-8", "cp1252"):
        try:
            return record.decode(encoding)
        except UnicodeDecodeError:
            continue
    return record.decode("latin-1")


def _unmarked(chunk: str) -> str:
    """A record whose message's own SUBJECT bytes are made spaces (git's mark kept)."""
    mark = chunk.find(SUBJECT) + 1
    if mark == 0:
        return chunk
    return chunk[:mark] + chunk[mark:].replace(SUBJECT, " ")


def _parse_record(chunk: str) -> CommitRecord | None:
    header, _, message = chunk.lstrip("\n").partition("\n")
    if not header:
        return None
    sha, *parents = header.split()
    return CommitRecord(sha, len(parents) > 1, message.removeprefix(SUBJECT).strip())
