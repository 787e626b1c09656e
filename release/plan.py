"""Decide what a bump does: a pure function of the facts and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from release.changelog import render_section
from release.conventional import ConventionalCommit, parse_message
from release.facts import Facts
from release.history import CommitLog
from release.ownership import OwnKind, done_for, is_release_commit
from release.policy import (
    NotAbove,
    PlanError,
    next_dev_version,
    next_release_version,
)
from release.settings import BranchRole, Settings
from release.version import Version

FULL_HISTORY_HINT = "fetch with full history and tags (git fetch --unshallow --tags)"


class IncompleteHistory(PlanError):
    """A shallow clone, or release commits whose tags were not fetched."""


class BelowRelease(PlanError):
    """VERSION is below a release tag that HEAD already contains."""


@dataclass(frozen=True)
class ReleasePlan:
    """What a bump on `branch` would write, or why it writes nothing (`idle`)."""

    branch: str
    role: BranchRole
    previous: Version
    version: Version
    idle: str = ""
    tag: str | None = None
    notes: str = ""
    released: bool = False
    latest: bool = False  # a release of the newest line (not a maintenance branch)

    @property
    def changes(self) -> bool:
        """True when the bump writes a release commit."""
        return not self.idle


def changelog_entries(commits: CommitLog) -> list[ConventionalCommit]:
    """The commits a changelog lists, oldest first: no merges, not the tool's own."""
    return [
        parse_message(commit.message, commit.sha)
        for commit in reversed(list(commits.records()))
        if not commit.is_merge and not is_release_commit(commit.message)
    ]


def _tag_name(settings: Settings, version: Version) -> str:
    return f"{settings.tag_prefix}{version}"


def check_history(facts: Facts, settings: Settings) -> None:
    """Refuse a history the rules cannot be applied to."""
    if facts.shallow:
        raise IncompleteHistory(f"this clone is shallow: {FULL_HISTORY_HINT}")
    newest = facts.newest
    for sha, version in facts.commits.released_versions():
        # A release commit newer than every tag means the tags were not fetched.
        if newest is None or version > newest:
            raise IncompleteHistory(
                f"release commit {sha[:7]} made {version} but tag "
                f"{_tag_name(settings, version)} is missing: {FULL_HISTORY_HINT}"
            )
    if newest is not None and facts.version < newest and facts.head_contains_newest:
        # A newer tag HEAD does not reach yet is what dev counts from; one it
        # contains means a bad edit or merge.
        raise BelowRelease(
            f"VERSION {facts.version} is below the newest release tag "
            f"{facts.tags[newest]}, which HEAD contains"
        )


def idle_reason(facts: Facts, settings: Settings, role: BranchRole) -> str:
    """Why HEAD needs no bump (already released or bumped), or ''."""
    if not facts.commits:
        part_of = _tag_name(settings, facts.newest or facts.version)
        return f"HEAD is already part of {part_of}"
    own = facts.head_own
    if own is not None and own.kind is OwnKind.SYNC and done_for(own, role):
        return "HEAD is the release tool's merge of a release into this branch"
    # A dev build's commit fast-forwarded onto master is not done: master
    # still has to release it.
    wanted_release = role is BranchRole.RELEASE
    if (
        own is not None
        and own.version == facts.version
        and facts.version.is_release == wanted_release
    ):
        return f"HEAD is already a release commit (chore(release): {own.version})"
    if facts.head_is_tagged:
        return f"{_tag_name(settings, facts.version)} already points at HEAD"
    return ""


def plan(facts: Facts, settings: Settings) -> ReleasePlan:
    """What `bump` does on facts.branch; raises a PlanError when the rules forbid it."""
    role = settings.role_of(facts.branch)
    current = facts.version
    if role is BranchRole.OTHER:
        why = f"branch {facts.branch!r} is neither the dev branch nor a release branch"
        return ReleasePlan(facts.branch, role, current, current, idle=why)
    check_history(facts, settings)
    idle = idle_reason(facts, settings, role)
    if idle:
        released = role is BranchRole.RELEASE and facts.head_is_tagged
        return ReleasePlan(
            facts.branch,
            role,
            current,
            current,
            idle=idle,
            released=released,
            latest=released and facts.line is None,
        )
    level = facts.commits.bump_level()
    if role is BranchRole.DEV:
        version = next_dev_version(
            current, facts.newest, level, facts.commits.built_versions()
        )
        return ReleasePlan(facts.branch, role, current, version)
    version = next_release_version(current, facts.newest, level, settings.tag_prefix)
    if facts.line is not None and not facts.line.contains(version):
        raise NotAbove(
            f"release {version} is outside the {facts.line} line of {facts.branch}: "
            "release it from a newer line"
        )
    notes = render_section(str(version), facts.date, changelog_entries(facts.commits))
    return ReleasePlan(
        facts.branch,
        role,
        current,
        version,
        tag=_tag_name(settings, version),
        notes=notes,
        released=True,
        latest=facts.line is None,
    )


def release_notes(facts: Facts, settings: Settings) -> str:
    """The changelog section the next release would get (commits since facts.start)."""
    check_history(facts, settings)
    level = facts.commits.bump_level()
    version = next_release_version(
        facts.version, facts.newest, level, settings.tag_prefix
    )
    return render_section(str(version), facts.date, changelog_entries(facts.commits))
