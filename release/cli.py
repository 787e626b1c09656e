"""`python -m release`: current, next, bump, sync, own-commit, changelog, hooks."""

from __future__ import annotations

import argparse
import os
import subprocess  # nosec B404 - asks git for the repository's commit encoding
from collections.abc import Sequence
from pathlib import Path

from release.conventional import message_problem
from release.environment import CiEnvironment, read_ci_environment
from release.errors import Refusal, ReleaseFailure
from release.policy import PlanError
from release.report import say
from release.settings import Settings, load_settings
from release.versionfile import find_root, read_version

# Commands that need git import GitPython when they run: `current` and the
# commit-msg hook stay fast without it.


def _work_tree() -> tuple[Path, Settings]:
    root = find_root(Path.cwd())
    return root, load_settings(root)


def _branch(explicit: str | None, ci: CiEnvironment, current: str | None) -> str:
    """--branch, else GITHUB_REF_NAME, else the checked-out branch."""
    branch = explicit or ci.ref_name or current
    if not branch:
        raise Refusal("HEAD is detached: name the branch with --branch")
    return branch


def command_current(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Print VERSION (validated)."""
    root, settings = _work_tree()
    print(read_version(root, settings))
    return 0


def command_next(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Print what bump would write; write nothing."""
    from release.gitrepo import GitRepository
    from release.publish import describe, make_plan

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        branch = _branch(args.branch, ci, repo.current_branch())
        plan = make_plan(repo, settings, branch)
    say(describe(plan, push=False, remote=""))
    print(plan.version)
    return 0


def command_bump(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Write, commit, tag and optionally push the next version."""
    from release.gitrepo import GitRepository
    from release.publish import bump, describe, make_plan, refuse_dirty_work_tree

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        branch = _branch(args.branch, ci, repo.current_branch())
        if args.dry_run:
            refuse_dirty_work_tree(repo)
            plan = make_plan(repo, settings, branch)
            say(f"dry run, nothing written: {describe(plan, False, args.remote)}")
            print(plan.version)
            return 0
        result = bump(repo, settings, branch, args.push, args.remote, ci.checked_sha)
    say(result.note)
    plan = result.plan
    ci.write_outputs(
        {
            "version": str(plan.version),
            "previous": str(plan.previous),
            "released": plan.released,
            "latest": plan.latest,
            "changed": result.changed,
            "sha": result.sha,
        }
    )
    print(plan.version)
    return 0


def command_sync(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Merge the newest release tag into the checked-out dev branch."""
    from release.gitrepo import GitRepository
    from release.sync import sync

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        result = sync(repo, settings, push=args.push, remote=args.remote)
    say(result.note)
    ci.write_outputs(
        {"synced": result.synced, "version": str(result.version), "sha": result.sha}
    )
    print(result.version)
    return 0


def command_own_commit(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Tell whether a commit is the tool's finished work for the branch (the guard)."""
    from release.facts import read_own_commit
    from release.gitrepo import GitRepository
    from release.ownership import done_for

    root, settings = _work_tree()
    revision = args.revision or ci.sha or "HEAD"
    with GitRepository(root) as repo:
        branch = _branch(args.branch, ci, repo.current_branch())
        facts = repo.commit_facts(revision, settings.version_file)
        own = read_own_commit(repo, revision, settings)
    done = done_for(own, settings.role_of(branch))
    title = facts.message.split("\n", 1)[0]
    if own is not None and done:
        say(
            f"{facts.sha[:7]} is the release tool's own commit ({title}; {own.why}): "
            f"nothing to check or version on {branch}"
        )
    elif own is not None:
        say(
            f"{facts.sha[:7]} is the release tool's commit ({title}) but {branch} "
            "still has to check and version it"
        )
    else:
        say(f"{facts.sha[:7]} is not the release tool's own commit ({title})")
    ci.write_outputs({"own": done})
    print("true" if done else "false")
    return 0


def command_changelog(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """Print the notes of the next release."""
    from release.facts import gather_facts
    from release.gitrepo import GitRepository
    from release.plan import release_notes

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        branch = repo.current_branch() or "HEAD"
        facts = gather_facts(repo, settings, branch, since=args.since)
    print(release_notes(facts, settings), end="")
    return 0


def commit_encoding(folder: Path) -> str:
    """The encoding git writes commit messages in here (i18n.commitEncoding)."""
    result = subprocess.run(  # nosec B603 B607 - fixed git argv
        ["git", "config", "--get", "i18n.commitEncoding"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "utf-8"


def command_check_commit_msg(args: argparse.Namespace, ci: CiEnvironment) -> int:
    """commit-msg hook: accept Conventional Commits, merges and reverts."""
    try:
        raw = Path(args.file).read_bytes()
        raw_text = raw.decode(commit_encoding(Path.cwd()))
    except (OSError, UnicodeDecodeError, LookupError) as error:
        raise Refusal(
            f"cannot read commit message file {args.file}: {error}"
        ) from error
    problem = message_problem(raw_text)
    if problem is not None:
        raise Refusal(problem)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line of VERSIONING.md."""
    parser = argparse.ArgumentParser(
        prog="python -m release", description="Versions, tags and changelog."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    current = commands.add_parser("current", help="print VERSION")
    current.set_defaults(handler=command_current)
    next_ = commands.add_parser("next", help="print what bump would write")
    next_.add_argument("--branch", help="branch role to act for")
    next_.set_defaults(handler=command_next)
    bump = commands.add_parser("bump", help="write, commit, tag (and push) a version")
    bump.add_argument("--branch", help="branch role to act for and push to")
    bump.add_argument("--push", action="store_true", help="push branch and tag")
    bump.add_argument("--remote", default="origin", help="remote to push to")
    bump.add_argument("--dry-run", action="store_true", help="write nothing")
    bump.set_defaults(handler=command_bump)
    changelog = commands.add_parser("changelog", help="print next release's notes")
    changelog.add_argument("--since", help="tag or commit to start from")
    changelog.set_defaults(handler=command_changelog)
    sync = commands.add_parser("sync", help="merge the newest release into dev")
    sync.add_argument("--push", action="store_true", help="push the dev branch")
    sync.add_argument("--remote", default="origin", help="remote to push to")
    sync.set_defaults(handler=command_sync)
    own = commands.add_parser("own-commit", help="is a commit the tool's own?")
    own.add_argument("revision", nargs="?", help="default: GITHUB_SHA, else HEAD")
    own.add_argument("--branch", help="the branch it was pushed to")
    own.set_defaults(handler=command_own_commit)
    check = commands.add_parser("check-commit-msg", help="commit-msg hook")
    check.add_argument("file", help="the commit message file git passes")
    check.set_defaults(handler=command_check_commit_msg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 2 and one line on stderr for a refusal, 1 for a failure."""
    args = build_parser().parse_args(argv)
    ci = read_ci_environment(os.environ)  # the only read of the environment
    try:
        ci.check_output()
        code: int = args.handler(args, ci)
    except (Refusal, PlanError) as refusal:
        say(" ".join(str(refusal).splitlines()))  # always exactly one line
        return 2
    except ReleaseFailure as failure:
        say(" ".join(str(failure).splitlines()))
        return 1
    return code
