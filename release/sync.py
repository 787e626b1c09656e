"""`sync`: merge the newest release into the dev branch, resolving the tool's files.

The merge is computed with `git merge-tree` (nothing touched), finished as a
commit object, and only then does the branch move, by a fast-forward: a
conflict the contract cannot resolve leaves branch, index and files as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from release.changelog import merge_changelogs
from release.errors import Refusal, ReleaseFailure
from release.facts import release_tags
from release.gitrepo import GitRepository, PushResult
from release.ownership import sync_message
from release.publish import (
    PUSH_ATTEMPTS,
    refuse_dirty_work_tree,
    refuse_shallow_clone,
)
from release.report import say
from release.settings import Settings
from release.version import MalformedVersion, Version, version_line
from release.versionfile import read_version


@dataclass(frozen=True)
class SyncResult:
    """Whether a merge was made, dev's VERSION afterwards and the commit."""

    synced: bool
    version: Version
    sha: str
    note: str


def _version_at(repo: GitRepository, revision: str, path: str) -> Version | None:
    text = repo.file_at(revision, path)
    if text is None:
        return None
    try:
        return Version.parse(version_line(text))
    except MalformedVersion:
        raise Refusal(f"{revision}:{path}: {text.strip()!r} is not a version") from None


def resolved_files(
    repo: GitRepository,
    settings: Settings,
    tag: str,
    released: Version,
    conflicted: list[str],
) -> dict[str, str]:
    """VERSION (the higher) and, when it conflicts, CHANGELOG.md by the contract.

    The release's version is the tag's name: a tag made by hand over a VERSION
    nobody bumped must not leave dev below the tag it now contains.
    """
    files: dict[str, str] = {}
    ours = _version_at(repo, "HEAD", settings.version_file)
    candidates = [version for version in (ours, released) if version is not None]
    files[settings.version_file] = f"{max(candidates)}\n"
    if settings.changelog in conflicted:
        files[settings.changelog] = merge_changelogs(
            repo.file_at("HEAD", settings.changelog) or "",
            repo.file_at(tag, settings.changelog) or "",
        )
    return files


def merge_release(
    repo: GitRepository, settings: Settings, tag: str, released: Version
) -> str:
    """The merge commit of `tag` into HEAD (not yet on any branch)."""
    head = repo.commit_of("HEAD")
    tree, conflicted = repo.merge_tree(head, tag)
    ours = {settings.version_file, settings.changelog}
    others = [path for path in conflicted if path not in ours]
    if others:
        raise Refusal(
            f"sync: {tag} conflicts with {settings.dev_branch} in "
            f"{', '.join(others)}: merge it by hand"
        )
    tree = repo.tree_with(
        tree, resolved_files(repo, settings, tag, released, conflicted)
    )
    message = sync_message(tag, settings.dev_branch)
    return repo.commit_tree(tree, [head, repo.commit_of(tag)], message)


def _checked_out_dev(repo: GitRepository, settings: Settings) -> str:
    branch = repo.current_branch()
    if branch != settings.dev_branch:
        raise Refusal(
            f"sync runs with the dev branch {settings.dev_branch!r} checked out, "
            f"not {branch or 'a detached HEAD'}"
        )
    return branch


def _nothing(repo: GitRepository, settings: Settings, why: str) -> SyncResult:
    version = read_version(repo.root, settings)
    return SyncResult(
        False, version, repo.commit_of("HEAD"), f"{why}: nothing to merge"
    )


def sync(
    repo: GitRepository, settings: Settings, push: bool = False, remote: str = "origin"
) -> SyncResult:
    """Merge the newest release tag into the checked-out dev branch (and push it)."""
    branch = _checked_out_dev(repo, settings)
    refuse_dirty_work_tree(repo)
    refuse_shallow_clone(repo)  # a merge base cut off reads as unrelated histories
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        tags = release_tags(repo.tag_names(), settings.tag_prefix)
        if not tags:
            return _nothing(repo, settings, "no release tag yet")
        released = max(tags)
        tag = tags[released]
        if repo.contains(tag):
            return _nothing(repo, settings, f"{branch} already contains {tag}")
        start = repo.commit_of("HEAD")
        repo.fast_forward(merge_release(repo, settings, tag, released))
        version = read_version(repo.root, settings)
        sha = repo.commit_of("HEAD")
        note = f"merged {tag} into {branch}, VERSION {version}"
        if not push:
            return SyncResult(True, version, sha, note)
        try:
            result = repo.push(remote, branch, None)
        except ReleaseFailure:
            repo.undo_release(start, None)
            raise
        if result is PushResult.PUSHED:
            return SyncResult(True, version, sha, f"{note}, pushed to {remote}")
        say(
            f"{remote}/{branch} moved while merging {tag} "
            f"(attempt {attempt} of {PUSH_ATTEMPTS}): fetching and retrying"
        )
        repo.undo_release(start, None)
        repo.catch_up(remote, branch)
    raise ReleaseFailure(
        f"{remote}/{branch} kept moving: gave up after {PUSH_ATTEMPTS} push attempts"
    )
