"""Conventional Commits: parse messages, rate a range, check one for the hook."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from release.ownership import is_release_commit
from release.version import BumpLevel

# The types the commit-msg hook accepts (those of @commitlint/config-conventional).
KNOWN_TYPES = (
    "build",
    "chore",
    "ci",
    "docs",
    "feat",
    "fix",
    "perf",
    "refactor",
    "revert",
    "style",
    "test",
)
EXPECTED_FORM = (
    "expected '<type>[(<scope>)][!]: <description>' with <type> one of "
    + ", ".join(KNOWN_TYPES)
    + " (e.g. 'feat(notes): list notes by tag'); merge and revert messages pass"
)

# Spaces or tabs after the colon: squash-merge titles written on GitHub often
# carry two, and the peers (commitlint, python-semantic-release) accept them.
# history.py scans for the same header; tests/release/test_titles.py holds both.
_HEADER = re.compile(
    r"(?P<type>[A-Za-z][A-Za-z0-9_-]*)(?:\((?P<scope>[^()\r\n]+)\))?(?P<bang>!)?:"
    r"[ \t]+(?P<description>\S.*)"
)
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE: *(?P<note>.*)$", re.MULTILINE)
_GIT_GENERATED = ("Merge ", "Revert ", "fixup! ", "squash! ", "amend! ")
_SCISSORS = "# ------------------------ >8 ------------------------"


@dataclass(frozen=True)
class ConventionalCommit:
    """One commit message read as a Conventional Commit (type None when it is not)."""

    type: str | None
    scope: str | None
    breaking: bool
    description: str
    sha: str = ""

    @property
    def level(self) -> BumpLevel:
        """The bump this commit asks for on its own."""
        if self.breaking:
            return BumpLevel.MAJOR
        if self.type == "feat":
            return BumpLevel.MINOR
        return BumpLevel.PATCH


def parse_message(message: str, sha: str = "") -> ConventionalCommit:
    """Read a full commit message (subject, body, footers)."""
    subject, _, body = message.partition("\n")
    breaking_footer = _BREAKING_FOOTER.search(body) is not None
    match = _HEADER.fullmatch(subject.strip())
    if match is None:
        return ConventionalCommit(None, None, breaking_footer, subject.strip(), sha)
    return ConventionalCommit(
        type=match["type"].lower(),
        scope=match["scope"],
        breaking=bool(match["bang"]) or breaking_footer,
        description=match["description"].strip(),
        sha=sha,
    )


def bump_level(messages: Iterable[str]) -> BumpLevel:
    """The highest bump any counted message asks for; PATCH when none counts."""
    level = BumpLevel.PATCH
    for message in messages:
        if is_release_commit(message):
            continue
        level = max(level, parse_message(message).level)
        if level is BumpLevel.MAJOR:
            break
    return level


def hook_message_text(raw: str) -> str:
    """The message git will record: comment lines and the scissors part removed."""
    text = raw.split(_SCISSORS, 1)[0]
    kept = [line for line in text.splitlines() if not line.startswith("#")]
    return "\n".join(kept).strip()


def message_problem(raw: str) -> str | None:
    """Why a commit message is not acceptable to the hook, or None when it is."""
    text = hook_message_text(raw)
    if not text:
        return f"empty commit message: {EXPECTED_FORM}"
    subject, _, rest = text.partition("\n")
    if subject.startswith(_GIT_GENERATED):
        return None
    match = _HEADER.fullmatch(subject)
    if match is None or match["type"].lower() not in KNOWN_TYPES:
        return f"not a Conventional Commit: {subject!r}: {EXPECTED_FORM}"
    if rest and rest.splitlines()[0].strip():
        return f"the body must follow the subject after one blank line: {subject!r}"
    return None
