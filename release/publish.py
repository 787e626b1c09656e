"""Carry out a plan: write VERSION (and CHANGELOG.md), commit, tag, push, retry."""

from __future__ import annotations

from release.changelog import prepend_section
from release.errors import Refusal, ReleaseFailure
from release.gitrepo import GitRepository
from release.plan import ReleasePlan, make_plan
from release.report import say
from release.settings import BranchRole, Settings
from release.versionfile import write_version

PUSH_ATTEMPTS = 5


def release_commit_message(plan: ReleasePlan) -> str:
    """The release tool's own commit message; `[skip ci]` stops CI looping on it."""
    return f"chore(release): {plan.version} [skip ci]"


def write_release(repo: GitRepository, settings: Settings, plan: ReleasePlan) -> None:
    """Write VERSION (and CHANGELOG.md on a release), commit them, tag a release."""
    write_version(repo.root, settings, plan.version)
    paths = [settings.version_file]
    if plan.role is BranchRole.RELEASE:
        changelog = repo.root / settings.changelog
        existing = changelog.read_text(encoding="utf-8") if changelog.exists() else ""
        changelog.write_text(prepend_section(existing, plan.notes), encoding="utf-8")
        paths.append(settings.changelog)
    repo.commit_files(paths, release_commit_message(plan))
    if plan.tag is not None:
        repo.create_tag(plan.tag, plan.notes)


def refuse_dirty_work_tree(repo: GitRepository) -> None:
    """Refuse to write over changes a person has not committed."""
    if repo.is_dirty():
        raise Refusal("the work tree has uncommitted changes: commit or stash them")


def describe(plan: ReleasePlan, push: bool, remote: str) -> str:
    """One line saying what the bump does (or did)."""
    if plan.idle:
        return f"{plan.idle}: VERSION stays {plan.version}"
    what = f"VERSION {plan.previous} -> {plan.version} on {plan.branch}"
    if plan.tag is not None:
        what += f", tag {plan.tag}"
    return what + (f", pushed to {remote}" if push else "")


def _pushed(repo: GitRepository, plan: ReleasePlan, start: str, remote: str) -> bool:
    """Push the release; on a failure other than a lost race, take it back locally."""
    try:
        return repo.push(remote, plan.branch, plan.tag)
    except ReleaseFailure:
        repo.undo_release(start, plan.tag)
        raise


def bump(
    repo: GitRepository,
    settings: Settings,
    branch: str,
    push: bool = False,
    remote: str = "origin",
) -> ReleasePlan:
    """Bump on `branch`; with `push`, retry from the remote tip when another run won."""
    refuse_dirty_work_tree(repo)
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        plan = make_plan(repo, settings, branch)
        if not plan.changes:
            return plan
        start = repo.commit_of("HEAD")
        write_release(repo, settings, plan)
        if not push or _pushed(repo, plan, start, remote):
            return plan
        say(
            f"{remote}/{branch} moved while releasing {plan.version} "
            f"(attempt {attempt} of {PUSH_ATTEMPTS}): fetching and retrying"
        )
        repo.undo_release(start, plan.tag)
        repo.catch_up(remote, branch)
    raise ReleaseFailure(
        f"{remote}/{branch} kept moving: gave up after {PUSH_ATTEMPTS} push attempts"
    )
