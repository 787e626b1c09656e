"""Everything a release plan is made from, read from git and the clock once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from release.gitrepo import GitRepository
from release.history import CommitLog
from release.ownership import OwnCommit, OwnKind, is_release_commit, own_commit
from release.settings import ReleaseLine, Settings
from release.version import MalformedVersion, Version
from release.versionfile import read_version


@dataclass(frozen=True)
class Facts:
    """The state a plan decides on; `plan()` reads nothing else."""

    branch: str
    version: Version  # VERSION as checked in
    tags: Mapping[Version, str]  # every release tag: version -> tag name
    commits: CommitLog  # `start..HEAD`, newest first (all history without start)
    start: str | None = None  # the tag (or --since) the range starts from
    shallow: bool = False
    head_contains_newest: bool = False  # HEAD reaches it (read when VERSION < it)
    head_is_tagged: bool = False  # the tag of VERSION points at HEAD
    head_own: OwnCommit | None = None  # HEAD is the tool's own commit
    date: str = ""  # today, UTC: the changelog's date
    line: ReleaseLine | None = None  # a maintenance branch's line (tags: only its)

    @property
    def newest(self) -> Version | None:
        """The newest release tag's version (None without any)."""
        return max(self.tags, default=None)


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


def today() -> str:
    """The release date written into the changelog (UTC)."""
    return datetime.now(timezone.utc).date().isoformat()


def read_own_commit(
    repo: GitRepository, revision: str, settings: Settings
) -> OwnCommit | None:
    """The tool's own commit `revision` is (None for a person's), and for a merge of
    a release into dev, whether dev's tip before it still needed a version."""
    facts = repo.commit_facts(revision, settings.version_file)
    own = own_commit(facts, settings.version_file, settings.changelog)
    if own is None or own.kind is not OwnKind.SYNC:
        return own
    # Merges of releases may follow each other: the first one over a person's
    # commit names that commit.
    before = read_own_commit(repo, facts.parents[0], settings)
    if before is None:
        return replace(own, unversioned_parent=facts.parents[0])
    return replace(own, unversioned_parent=before.unversioned_parent)


def gather_facts(
    repo: GitRepository, settings: Settings, branch: str, since: str | None = None
) -> Facts:
    """Read VERSION, tags, history and HEAD once; decide nothing."""
    version = read_version(repo.root, settings)
    shallow = repo.is_shallow()
    tags = release_tags(repo.tag_names(), settings.tag_prefix)
    line = settings.line_of(branch)
    if line is not None:  # a maintenance branch counts from its own line's tags
        tags = {
            version: name for version, name in tags.items() if line.contains(version)
        }
    newest = max(tags, default=None)
    if since is not None:
        repo.commit_of(since)
    start = since or (tags[newest] if newest else None)
    commits = CommitLog("") if shallow else repo.commits(start)
    head = repo.commit_of("HEAD")
    head_own = None
    newest_record = commits.head()
    if newest_record is not None and is_release_commit(newest_record.message):
        # Only a commit with the tool's title and trailer is read further.
        head_own = read_own_commit(repo, head, settings)
    tag = tags.get(version)
    return Facts(
        branch=branch,
        version=version,
        tags=tags,
        commits=commits,
        start=start,
        shallow=shallow,
        # Walking the history costs; only a VERSION below the tag needs to know.
        head_contains_newest=(
            newest is not None and version < newest and repo.contains(tags[newest])
        ),
        head_is_tagged=tag is not None and repo.commit_of(tag) == head,
        head_own=head_own,
        date=today(),
        line=line,
    )
