"""The release tool's own commits: how it writes them and how it knows them again.

A title alone proves nothing (a person may write `chore(release): 0.3.1-dev.1`),
so the tool's commits also carry a trailer, and the commit that HEAD or a
remote tip is gets checked against what the tool would have written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from release.settings import BranchRole
from release.version import MalformedVersion, Version, version_line

RELEASE_COMMIT_PREFIX = "chore(release): "
TRAILER_KEY = "Release-Tool"
BUMP_TRAILER = f"{TRAILER_KEY}: python -m release bump"
SYNC_TRAILER = f"{TRAILER_KEY}: python -m release sync"
_TRAILER_LINE = re.compile(
    rf"^{TRAILER_KEY}: python -m release (?P<command>bump|sync)$", re.MULTILINE
)
_SYNC_SUBJECT = re.compile(r"chore\(release\): merge (?P<tag>\S+) into (?P<branch>\S+)")


class OwnKind(Enum):
    """Which of the tool's commands made a commit."""

    BUMP = "bump"
    SYNC = "sync"


@dataclass(frozen=True)
class CommitFacts:
    """What is needed to tell whether one commit is the tool's own."""

    sha: str
    parents: tuple[str, ...]
    message: str
    changed_files: tuple[str, ...]
    version_text: str | None  # the version file at this commit, None when absent
    tag_commit: str | None = None  # the commit of the tag a sync title names


@dataclass(frozen=True)
class OwnCommit:
    """A commit the tool made: which command, and the version it wrote."""

    kind: OwnKind
    version: Version | None
    why: str
    # A merge of a release into dev made while dev's tip was a person's commit (one
    # pushed while the release ran): that commit is merged but not versioned yet.
    unversioned_parent: str | None = None


def bump_message(version: Version) -> str:
    """The commit message of a version the tool writes."""
    return f"{RELEASE_COMMIT_PREFIX}{version}\n\n{BUMP_TRAILER}\n"


def sync_message(tag: str, branch: str) -> str:
    """The message of the tool's merge of a release into the dev branch."""
    return f"{RELEASE_COMMIT_PREFIX}merge {tag} into {branch}\n\n{SYNC_TRAILER}\n"


def trailer_command(message: str) -> str | None:
    """`bump` or `sync` for a message with the tool's title and trailer, else None."""
    if not message.startswith(RELEASE_COMMIT_PREFIX):
        return None
    match = _TRAILER_LINE.search(message)
    return match["command"] if match else None


def is_release_commit(message: str) -> bool:
    """True for a message the tool writes (title and trailer): not counted."""
    return trailer_command(message) is not None


def titled_version(message: str) -> Version | None:
    """The version a `chore(release): X` title names (None when it names none)."""
    if not message.startswith(RELEASE_COMMIT_PREFIX):
        return None
    words = message[len(RELEASE_COMMIT_PREFIX) :].split("\n", 1)[0].split()
    try:
        return Version.parse(words[0] if words else "")
    except MalformedVersion:
        return None


def sync_tag(message: str) -> str | None:
    """The tag a sync title names (`chore(release): merge v0.2.0 into dev`)."""
    match = _SYNC_SUBJECT.match(message.split("\n", 1)[0])
    return match["tag"] if match else None


def own_commit(
    commit: CommitFacts, version_file: str, changelog: str
) -> OwnCommit | None:
    """The tool's own commit this is, or None (a person's, whatever its title)."""
    command = trailer_command(commit.message)
    if command == OwnKind.BUMP.value:
        return _own_bump(commit, version_file, changelog)
    if command == OwnKind.SYNC.value:
        return _own_sync(commit)
    return None


def _own_bump(
    commit: CommitFacts, version_file: str, changelog: str
) -> OwnCommit | None:
    version = titled_version(commit.message)
    if version is None or len(commit.parents) != 1:
        return None
    if not set(commit.changed_files) <= {version_file, changelog}:
        return None  # a person's commit that changes other files
    if version_file not in commit.changed_files:
        return None
    if version_line(commit.version_text or "") != str(version):
        return None
    return OwnCommit(OwnKind.BUMP, version, f"it wrote {version_file} {version}")


def _own_sync(commit: CommitFacts) -> OwnCommit | None:
    tag = sync_tag(commit.message)
    if tag is None or len(commit.parents) != 2 or commit.tag_commit is None:
        return None
    if commit.parents[1] != commit.tag_commit:
        return None
    return OwnCommit(OwnKind.SYNC, None, f"it merged {tag}")


def done_for(own: OwnCommit | None, role: BranchRole) -> bool:
    """True when `own` is the tool's finished work for a branch of `role`.

    A dev build's commit fast-forwarded (or rebased) onto master is the tool's,
    but master still has to release it: not done there.
    """
    if own is None or role is BranchRole.OTHER:
        return False
    if own.kind is OwnKind.SYNC:
        return role is BranchRole.DEV and own.unversioned_parent is None
    return own.version is not None and own.version.is_release == (
        role is BranchRole.RELEASE
    )
