"""Carry out a plan: write VERSION (and CHANGELOG.md), commit, tag, push, retry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from release.changelog import prepend_section
from release.errors import Refusal, ReleaseFailure
from release.facts import gather_facts
from release.gitrepo import GitRepository, PushResult
from release.ownership import OwnKind, bump_message, own_commit
from release.plan import FULL_HISTORY_HINT, IncompleteHistory, ReleasePlan, plan
from release.report import say
from release.settings import BranchRole, Settings
from release.versionfile import read_version, write_version

PUSH_ATTEMPTS = 5


@dataclass(frozen=True)
class BumpResult:
    """What a bump did: its plan, whether it made a version, and the commit."""

    plan: ReleasePlan
    changed: bool
    sha: str
    note: str


def make_plan(repo: GitRepository, settings: Settings, branch: str) -> ReleasePlan:
    """Gather the facts once, then decide."""
    return plan(gather_facts(repo, settings, branch), settings)


def _snapshot(root: Path, paths: list[str]) -> dict[str, bytes | None]:
    """The bytes of each file about to be written (None: it does not exist yet)."""
    saved: dict[str, bytes | None] = {}
    for name in paths:
        path = root / name
        if path.is_file():
            saved[name] = path.read_bytes()
        elif not path.exists():
            saved[name] = None
    return saved


def _restore(root: Path, saved: dict[str, bytes | None]) -> None:
    """Put back files `git reset` does not know (untracked or ignored ones)."""
    for name, content in saved.items():
        path = root / name
        try:
            if content is None:
                path.unlink(missing_ok=True)
            elif not path.is_file() or path.read_bytes() != content:
                path.write_bytes(content)
        except OSError:
            # Unchanged files are never rewritten, so a file that cannot be
            # written (read-only) was not changed either: nothing to put back.
            continue


def write_release(repo: GitRepository, settings: Settings, plan: ReleasePlan) -> None:
    """Write VERSION (and CHANGELOG.md on a release), commit, tag: all or nothing."""
    paths = [settings.version_file]
    if plan.role is BranchRole.RELEASE:
        paths.append(settings.changelog)
    for name in paths:
        if (repo.root / name).is_symlink():
            raise Refusal(
                f"{name} is a symbolic link, so the release commit would not hold "
                "its text: make it a regular file"
            )
        if repo.is_ignored(name):
            raise Refusal(
                f"{name} is git-ignored, so no release commit can hold it: "
                "remove it from .gitignore"
            )
    start = repo.commit_of("HEAD")
    tag_is_new = plan.tag is not None and not repo.has_tag(plan.tag)
    saved = _snapshot(repo.root, paths)
    staged = False
    try:
        write_version(repo.root, settings, plan.version)
        if plan.role is BranchRole.RELEASE:
            changelog = repo.root / settings.changelog
            existing = (
                changelog.read_text(encoding="utf-8") if changelog.exists() else ""
            )
            changelog.write_text(
                prepend_section(existing, plan.notes), encoding="utf-8"
            )
        staged = True
        repo.commit_files(paths, bump_message(plan.version))
        if plan.tag is not None:
            repo.create_tag(plan.tag, plan.notes)
    except (ReleaseFailure, OSError, UnicodeError) as error:
        _restore(repo.root, saved)  # first: on a full disk this frees the space
        if staged:  # git saw the files: take its index, branch and tag back too
            repo.undo_release(start, plan.tag if tag_is_new else None)
        raise ReleaseFailure(f"{error}; nothing was changed") from error


def refuse_dirty_work_tree(repo: GitRepository) -> None:
    """Refuse to write over changes a person has not committed."""
    if repo.is_dirty():
        raise Refusal("the work tree has uncommitted changes: commit or stash them")


def refuse_shallow_clone(repo: GitRepository) -> None:
    """Refuse a cut-off history before any fetch: a refusal writes nothing."""
    if repo.is_shallow():
        raise IncompleteHistory(f"this clone is shallow: {FULL_HISTORY_HINT}")


def describe(plan: ReleasePlan, push: bool, remote: str) -> str:
    """One line saying what the bump does (or did)."""
    if plan.idle:
        return f"{plan.idle}: VERSION stays {plan.version}"
    what = f"VERSION {plan.previous} -> {plan.version} on {plan.branch}"
    if plan.tag is not None:
        what += f", tag {plan.tag}"
    return what + (f", pushed to {remote}" if push else "")


def _push(repo: GitRepository, plan: ReleasePlan, start: str, remote: str) -> bool:
    """Push the release: True landed, False lost the race (and taken back locally).

    A push refused for any other reason is taken back and raised, not retried.
    """
    try:
        result = repo.push(remote, plan.branch, plan.tag)
    except ReleaseFailure:
        repo.undo_release(start, plan.tag)
        raise
    if result is PushResult.MOVED:
        repo.undo_release(start, plan.tag)
        return False
    return True


def _result(
    repo: GitRepository, plan: ReleasePlan, push: bool, remote: str
) -> BumpResult:
    return BumpResult(
        plan, plan.changes, repo.commit_of("HEAD"), describe(plan, push, remote)
    )


def bump(
    repo: GitRepository,
    settings: Settings,
    branch: str,
    push: bool = False,
    remote: str = "origin",
    checked_sha: str | None = None,
) -> BumpResult:
    """Bump on `branch`; with `push`, retry from the remote tip when another run won.

    With `checked_sha` (GitHub Actions), only that commit is versioned and a
    lost race is not retried: see `bump_checked_commit`.
    """
    refuse_dirty_work_tree(repo)
    refuse_shallow_clone(repo)
    if push and checked_sha is not None:
        return bump_checked_commit(repo, settings, branch, remote, checked_sha)
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        plan = make_plan(repo, settings, branch)
        if not plan.changes:
            return _result(repo, plan, push=False, remote=remote)
        start = repo.commit_of("HEAD")
        write_release(repo, settings, plan)
        if not push or _push(repo, plan, start, remote):
            return _result(repo, plan, push, remote)
        say(
            f"{remote}/{branch} moved while releasing {plan.version} "
            f"(attempt {attempt} of {PUSH_ATTEMPTS}): fetching and retrying"
        )
        repo.catch_up(remote, branch)
    raise ReleaseFailure(
        f"{remote}/{branch} kept moving: gave up after {PUSH_ATTEMPTS} push attempts"
    )


def bump_checked_commit(
    repo: GitRepository, settings: Settings, branch: str, remote: str, checked: str
) -> BumpResult:
    """Version `checked` (GITHUB_SHA) alone; never merge commits it did not check."""
    head = repo.commit_of("HEAD")
    if head != checked:
        raise Refusal(
            f"HEAD {head[:7]} is not GITHUB_SHA {checked[:7]}: "
            "version only the commit this run checked"
        )
    tip = repo.fetch_branch(remote, branch)
    if tip is not None and tip != head:
        return _remote_ahead(repo, settings, branch, remote, head, tip)
    plan = make_plan(repo, settings, branch)
    if not plan.changes:
        return _result(repo, plan, push=False, remote=remote)
    write_release(repo, settings, plan)
    if _push(repo, plan, head, remote):
        return _result(repo, plan, push=True, remote=remote)
    tip = repo.fetch_branch(remote, branch) or head
    return _moved_past(repo, settings, branch, remote, head, tip)


def _remote_ahead(
    repo: GitRepository,
    settings: Settings,
    branch: str,
    remote: str,
    head: str,
    tip: str,
) -> BumpResult:
    """The remote is past GITHUB_SHA: our own earlier version of it, or newer work."""
    facts = repo.commit_facts(tip, settings.version_file)
    own = own_commit(facts, settings.version_file, settings.changelog)
    if own is not None and own.kind is OwnKind.BUMP and facts.parents == (head,):
        repo.fast_forward(tip)  # a re-run: this commit's version is already out
        plan = make_plan(repo, settings, branch)
        note = (
            f"{remote}/{branch} already has this commit's version {own.version} "
            f"({tip[:7]}, a re-run): nothing to do"
        )
        return BumpResult(plan, False, tip, note)
    return _moved_past(repo, settings, branch, remote, head, tip)


def _moved_past(
    repo: GitRepository,
    settings: Settings,
    branch: str,
    remote: str,
    head: str,
    tip: str,
) -> BumpResult:
    """No version: the run for the newer commit versions it, after its checks."""
    current = read_version(repo.root, settings)
    why = (
        f"{remote}/{branch} is at {tip[:7]}, past GITHUB_SHA {head[:7]}: "
        f"the run for {tip[:7]} versions it, after its checks"
    )
    idle = ReleasePlan(branch, settings.role_of(branch), current, current, idle=why)
    return BumpResult(idle, False, head, f"{why}; VERSION stays {current}")
