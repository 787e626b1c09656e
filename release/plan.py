"""Decide what a bump does, from VERSION, the release tags and the commits since."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from release.changelog import render_section
from release.conventional import ConventionalCommit, is_release_commit, parse_message
from release.errors import Refusal
from release.gitrepo import GitRepository
from release.history import CommitLog, CommitRecord, release_commit_version
from release.policy import next_dev_version, next_release_version
from release.settings import BranchRole, Settings
from release.version import MalformedVersion, Version
from release.versionfile import read_version

FULL_HISTORY_HINT = "fetch with full history and tags (git fetch --unshallow --tags)"


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

    @property
    def changes(self) -> bool:
        """True when the bump writes a release commit."""
        return not self.idle


def resolve_branch(explicit: str | None, repo: GitRepository) -> str:
    """--branch, else GITHUB_REF_NAME, else the checked-out branch."""
    branch = explicit or os.environ.get("GITHUB_REF_NAME") or repo.current_branch()
    if not branch:
        raise Refusal("HEAD is detached: name the branch with --branch")
    return branch


def release_tags(names: list[str], prefix: str) -> dict[Version, str]:
    """Release version -> tag name for every `<prefix>X.Y.Z` tag."""
    tags = {}
    for name in names:
        if name.startswith(prefix):
            try:
                version = Version.parse(name[len(prefix) :])
            except MalformedVersion:
                continue
            if version.is_release:
                tags[version] = name
    return tags


def changelog_entries(commits: CommitLog) -> list[ConventionalCommit]:
    """The commits a changelog lists, oldest first: no merges, not the tool's own."""
    return [
        parse_message(commit.message, commit.sha)
        for commit in reversed(list(commits.records()))
        if not commit.is_merge and not is_release_commit(commit.message)
    ]


def today() -> str:
    """The release date written into the changelog (UTC)."""
    return datetime.now(timezone.utc).date().isoformat()


class _Context:
    """What a plan is made from: VERSION, tags, the newest release and commits since."""

    def __init__(self, repo: GitRepository, settings: Settings, since: str | None):
        self.repo = repo
        self.settings = settings
        self.current = read_version(repo.root, settings)
        if repo.is_shallow():
            raise Refusal(f"this clone is shallow: {FULL_HISTORY_HINT}")
        self.tags = release_tags(repo.tag_names(), settings.tag_prefix)
        self.newest = max(self.tags, default=None)
        self.start = since or (self.tags[self.newest] if self.newest else None)
        self.commits = repo.commits(self.start)
        self._check_tags_present()
        self._check_not_below_newest()

    def tag_name(self, version: Version) -> str:
        return f"{self.settings.tag_prefix}{version}"

    def _check_tags_present(self) -> None:
        """A release commit newer than every tag means the tags were not fetched."""
        for sha, version in self.commits.released_versions():
            if self.newest is None or version > self.newest:
                raise Refusal(
                    f"release commit {sha[:7]} made {version} but tag "
                    f"{self.tag_name(version)} is missing: {FULL_HISTORY_HINT}"
                )

    def _check_not_below_newest(self) -> None:
        """VERSION below a release that HEAD already contains is a bad edit or merge."""
        newest = self.newest
        if newest is None or self.current >= newest:
            return
        if self.repo.contains(self.tags[newest]):
            raise Refusal(
                f"VERSION {self.current} is below the newest release tag "
                f"{self.tags[newest]}, which HEAD contains"
            )

    def idle_reason(self, role: BranchRole) -> str:
        """Why HEAD needs no bump (already released or bumped), or ''."""
        if not self.commits:
            return (
                f"HEAD is already part of {self.tag_name(self.newest or self.current)}"
            )
        head = self.commits.head()
        if head is not None and self._made_current_version(head, role):
            return f"HEAD is already a release commit ({head.message.splitlines()[0]})"
        if self.head_is_tagged():
            return f"{self.tag_name(self.current)} already points at HEAD"
        return ""

    def _made_current_version(self, commit: CommitRecord, role: BranchRole) -> bool:
        """True for the release tool's commit that wrote VERSION for this role.

        A dev build's commit fast-forwarded onto master is not: master still
        has to release it.
        """
        version = release_commit_version(commit.message)
        wanted_release = role is BranchRole.RELEASE
        return version == self.current and self.current.is_release == wanted_release

    def head_is_tagged(self) -> bool:
        """True when the release tag of the current VERSION points at HEAD."""
        tag = self.tags.get(self.current)
        if tag is None:
            return False
        head = self.commits.head()
        if head is not None and tag == self.start:
            return False  # HEAD lies in tag..HEAD, so it is not the tagged commit
        sha = head.sha if head is not None else self.repo.commit_of("HEAD")
        return self.repo.commit_of(tag) == sha


def make_plan(repo: GitRepository, settings: Settings, branch: str) -> ReleasePlan:
    """What `bump` does on `branch` now; raises Refusal for unsafe states."""
    role = settings.role_of(branch)
    if role is BranchRole.OTHER:
        current = read_version(repo.root, settings)
        why = f"branch {branch!r} is neither the dev branch nor a release branch"
        return ReleasePlan(branch, role, current, current, idle=why)
    context = _Context(repo, settings, since=None)
    current = context.current
    idle = context.idle_reason(role)
    if idle:
        released = role is BranchRole.RELEASE and context.head_is_tagged()
        return ReleasePlan(branch, role, current, current, idle=idle, released=released)
    level = context.commits.bump_level()
    if role is BranchRole.DEV:
        version = next_dev_version(current, context.newest, level)
        return ReleasePlan(branch, role, current, version)
    version = next_release_version(current, context.newest, level, settings.tag_prefix)
    notes = render_section(str(version), today(), changelog_entries(context.commits))
    tag = context.tag_name(version)
    return ReleasePlan(
        branch, role, current, version, tag=tag, notes=notes, released=True
    )


def next_release_notes(
    repo: GitRepository, settings: Settings, since: str | None
) -> str:
    """The changelog section the next release would get (commits since `since`)."""
    if since is not None:
        repo.commit_of(since)
    context = _Context(repo, settings, since=since)
    level = context.commits.bump_level()
    version = next_release_version(
        context.current, context.newest, level, settings.tag_prefix
    )
    return render_section(str(version), today(), changelog_entries(context.commits))
