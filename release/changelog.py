"""CHANGELOG.md sections in Keep a Changelog layout, grouped by commit type."""

from __future__ import annotations

import re
from collections.abc import Sequence

from release.conventional import ConventionalCommit
from release.version import MalformedVersion, Version

# Section title per commit type, in the order they appear; breaking changes
# come before all of them and anything not conventional goes under "Other".
GROUP_TITLES = {
    "feat": "Features",
    "fix": "Bug fixes",
    "perf": "Performance",
    "refactor": "Refactoring",
    "docs": "Documentation",
    "test": "Tests",
    "build": "Build",
    "ci": "Continuous integration",
    "style": "Style",
    "chore": "Chores",
    "revert": "Reverts",
}
BREAKING_TITLE = "Breaking changes"
OTHER_TITLE = "Other"
DEFAULT_HEADER = (
    "# Changelog\n\n"
    "All notable changes to this project are written here by `python -m release`\n"
    "on every release, newest first, in the form of "
    "[Keep a Changelog](https://keepachangelog.com/en/1.1.0/).\n"
)


def _entry(commit: ConventionalCommit) -> str:
    scope = f"**{commit.scope}:** " if commit.scope else ""
    sha = f" ({commit.sha[:7]})" if commit.sha else ""
    return f"- {scope}{commit.description}{sha}"


def _group_title(commit: ConventionalCommit) -> str:
    if commit.breaking:
        return BREAKING_TITLE
    if commit.type in GROUP_TITLES:
        return GROUP_TITLES[commit.type]
    return OTHER_TITLE


def render_section(
    version: str, date: str, commits: Sequence[ConventionalCommit]
) -> str:
    """One release's section: `## [X.Y.Z] - date` then `### <group>` lists."""
    groups: dict[str, list[str]] = {}
    for commit in commits:
        groups.setdefault(_group_title(commit), []).append(_entry(commit))
    order = [BREAKING_TITLE, *GROUP_TITLES.values(), OTHER_TITLE]
    parts = [f"## [{version}] - {date}"]
    for title in order:
        if title in groups:
            parts.append(f"### {title}\n\n" + "\n".join(groups[title]))
    if len(parts) == 1:
        parts.append("No notable changes.")
    return "\n\n".join(parts) + "\n"


def prepend_section(existing: str, section: str) -> str:
    """The changelog with `section` above every earlier release (below Unreleased)."""
    text = existing if existing.strip() else DEFAULT_HEADER
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("## ") and not line.startswith("## [Unreleased]"):
            return "".join(lines[:index]) + section + "\n" + "".join(lines[index:])
    return text.rstrip("\n") + "\n\n" + section


_RELEASE_HEADING = re.compile(r"^## \[(?P<version>[^\]\s]+)\]", re.MULTILINE)


# Where a section whose heading names no version sits: before the released
# section that follows it, or (None) at the end. New sections go on top, so
# what follows an old section never changes.
Anchor = Version | None


def _split(text: str) -> tuple[str, dict[Version, str], dict[Anchor, list[str]]]:
    """A changelog's own text (header, Unreleased), its released sections, and the
    sections whose heading names no version (`## [v1.0.0]`, `## [1.0]`) by anchor."""
    sections: dict[Version, str] = {}
    unparsed: dict[Anchor, list[str]] = {}
    matches = [
        match
        for match in _RELEASE_HEADING.finditer(text)
        if match["version"] != "Unreleased"
    ]
    head = text[: matches[0].start()] if matches else text
    waiting: list[str] = []
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following else len(text)
        chunk = text[match.start() : end].rstrip("\n") + "\n"
        try:
            version = Version.parse(match["version"])
        except MalformedVersion:
            waiting.append(chunk)
            continue
        if version not in sections:
            sections[version] = chunk
            unparsed[version], waiting = waiting, []
    unparsed[None] = waiting
    return head, sections, unparsed


def merge_changelogs(ours: str, released: str) -> str:
    """Dev's changelog after merging a release: each released section once.

    Dev's own text (header, Unreleased) stays on top; below it every release
    section either side has, newest first, in the release's wording. A section
    whose heading names no version is kept verbatim, once, in its place (before
    the released section that followed it).
    """
    head, sections, ours_unparsed = _split(ours)
    released_head, released_sections, unparsed = _split(released)
    sections.update(released_sections)
    seen = {chunk for chunks in unparsed.values() for chunk in chunks}
    for anchor, chunks in ours_unparsed.items():
        new = [chunk for chunk in chunks if chunk not in seen]
        unparsed[anchor] = [*unparsed.get(anchor, []), *new]
        seen.update(new)
    if not head.strip():
        head = released_head if released_head.strip() else DEFAULT_HEADER
    ordered: list[str] = []
    for version in sorted(sections, reverse=True):
        ordered.extend(unparsed.get(version, []))
        ordered.append(sections[version])
    ordered.extend(unparsed.get(None, []))
    return "\n".join([head.rstrip("\n") + "\n", *ordered])
