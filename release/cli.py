"""`python -m release`: current, next, bump, changelog, check-commit-msg."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from release.conventional import message_problem
from release.errors import Refusal, ReleaseFailure
from release.report import say
from release.settings import Settings, load_settings
from release.versionfile import find_root, read_version

# Commands that need git import GitPython when they run: `current` and the
# commit-msg hook stay fast without it.


def _work_tree() -> tuple[Path, Settings]:
    root = find_root(Path.cwd())
    return root, load_settings(root)


def command_current(args: argparse.Namespace) -> int:
    """Print VERSION (validated)."""
    root, settings = _work_tree()
    print(read_version(root, settings))
    return 0


def command_next(args: argparse.Namespace) -> int:
    """Print what bump would write; write nothing."""
    from release.gitrepo import GitRepository
    from release.plan import make_plan, resolve_branch
    from release.publish import describe

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        plan = make_plan(repo, settings, resolve_branch(args.branch, repo))
    say(describe(plan, push=False, remote=""))
    print(plan.version)
    return 0


def command_bump(args: argparse.Namespace) -> int:
    """Write, commit, tag and optionally push the next version."""
    from release.gitrepo import GitRepository
    from release.plan import make_plan, resolve_branch
    from release.publish import bump, describe, refuse_dirty_work_tree

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        branch = resolve_branch(args.branch, repo)
        if args.dry_run:
            refuse_dirty_work_tree(repo)
            plan = make_plan(repo, settings, branch)
            say(f"dry run, nothing written: {describe(plan, False, args.remote)}")
        else:
            plan = bump(repo, settings, branch, push=args.push, remote=args.remote)
            say(describe(plan, args.push and plan.changes, args.remote))
            _write_github_output(str(plan.version), str(plan.previous), plan.released)
    print(plan.version)
    return 0


def command_changelog(args: argparse.Namespace) -> int:
    """Print the notes of the next release."""
    from release.gitrepo import GitRepository
    from release.plan import next_release_notes

    root, settings = _work_tree()
    with GitRepository(root) as repo:
        notes = next_release_notes(repo, settings, args.since)
    print(notes, end="")
    return 0


def command_check_commit_msg(args: argparse.Namespace) -> int:
    """commit-msg hook: accept Conventional Commits, merges and reverts."""
    try:
        raw = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Refusal(
            f"cannot read commit message file {args.file}: {error}"
        ) from error
    problem = message_problem(raw)
    if problem is not None:
        raise Refusal(problem)
    return 0


def _write_github_output(version: str, previous: str, released: bool) -> None:
    """Step outputs for GitHub Actions: version, previous, released."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as output:
        output.write(f"version={version}\nprevious={previous}\n")
        output.write(f"released={'true' if released else 'false'}\n")


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
    check = commands.add_parser("check-commit-msg", help="commit-msg hook")
    check.add_argument("file", help="the commit message file git passes")
    check.set_defaults(handler=command_check_commit_msg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 2 and one line on stderr for a refusal, 1 for a failure."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except Refusal as refusal:
        say(" ".join(str(refusal).splitlines()))  # always exactly one line
        return 2
    except ReleaseFailure as failure:
        say(" ".join(str(failure).splitlines()))
        return 1
    return code
