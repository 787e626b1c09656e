"""Real git repositories for release tests: a bare origin and clones of it."""

from __future__ import annotations

import io
import os
import subprocess  # nosec B404 - tests drive the real git binary
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from release.cli import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliResult:
    """Exit status and the two output streams of one release command."""

    code: int
    out: str
    err: str


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`; its stdout without the trailing newline."""
    result = subprocess.run(  # nosec B603 B607 - fixed git argv in a test
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.rstrip("\n")


def run_release(cwd: Path, *args: str) -> CliResult:
    """`python -m release ARGS` in-process (measured by coverage) with cwd `cwd`."""
    before = Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(before)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_release_process(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> CliResult:
    """`python -m release ARGS` as its own process, as CI runs it."""
    environment = dict(os.environ, **(env or {}))
    result = subprocess.run(  # nosec B603 - the interpreter running the tests
        [sys.executable, "-m", "release", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=120,
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


class Clone:
    """A work tree whose `origin` is a bare repository."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str) -> str:
        """git in this work tree."""
        return git(self.path, *args)

    def commit(self, message: str) -> str:
        """An (empty) commit with `message`; its sha."""
        self.git("commit", "--allow-empty", "--no-verify", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def release(self, *args: str) -> CliResult:
        """The release CLI run in this work tree, in-process."""
        return run_release(self.path, *args)

    def bump(self, *args: str) -> str:
        """`bump ARGS`, which must succeed; the version it printed."""
        result = self.release("bump", *args)
        assert result.code == 0, result.err
        return result.out.strip()

    def checkout(self, branch: str) -> None:
        """Switch to `branch`."""
        self.git("checkout", "-q", branch)

    def merge(self, branch: str, message: str) -> None:
        """Merge `branch` into the current branch (a real merge commit when needed)."""
        self.git("merge", "-q", "--no-edit", "-m", message, branch)

    @property
    def version(self) -> str:
        """VERSION as written (one line)."""
        return (self.path / "VERSION").read_text()

    @property
    def changelog(self) -> str:
        """CHANGELOG.md, or '' when there is none."""
        path = self.path / "CHANGELOG.md"
        return path.read_text() if path.exists() else ""

    def tags(self) -> list[str]:
        """Every tag, in version order."""
        return self.git("tag", "--list", "--sort=v:refname").split()


def make_origin(base: Path, version: str = "0.1.0", tag: bool = True) -> Clone:
    """A bare origin plus a first clone on master with VERSION (and tag v<version>)."""
    origin = base / "origin.git"
    git(base, "init", "-q", "--bare", "-b", "master", str(origin))
    # A force push (non-fast-forward update) would fail loudly at the origin.
    git(origin, "config", "receive.denyNonFastForwards", "true")
    git(origin, "config", "receive.denyDeletes", "true")
    work = base / "work"
    git(base, "clone", "-q", str(origin), str(work))
    clone = Clone(work)
    (work / "VERSION").write_text(f"{version}\n")
    clone.git("add", "VERSION")
    clone.commit("chore: start the project")
    if tag:
        clone.git("tag", "-a", f"v{version}", "-m", f"release {version}")
    clone.git("push", "-q", "--follow-tags", "origin", "master")
    return clone


def clone_of_origin(base: Path, name: str, branch: str) -> Clone:
    """A second full clone of `base`/origin.git on `branch`, as another machine has."""
    clone = Clone(base / name)
    git(base, "clone", "-q", "-b", branch, str(base / "origin.git"), str(clone.path))
    return clone


def install_commit_msg_hook(clone: Clone) -> None:
    """`python -m release check-commit-msg` as git's commit-msg hook."""
    write_hook(
        clone.path,
        "commit-msg",
        f'exec {sys.executable} -m release check-commit-msg "$1"\n',
    )


def isolated_git_environment(home: Path) -> dict[str, str]:
    """Environment variables giving git a config of its own (identity, branch)."""
    config = home / "gitconfig"
    config.write_text(
        "[user]\n\tname = Release Test\n\temail = release-test@example.invalid\n"
        "[init]\n\tdefaultBranch = master\n[advice]\n\tdetachedHead = false\n"
    )
    return {
        "GIT_CONFIG_GLOBAL": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(home),
    }


def everything(clone: Clone) -> dict[str, object]:
    """Branch, tags, index, work tree and any merge in progress: what must not move."""
    files = {}
    for name in ("VERSION", "CHANGELOG.md"):
        path = clone.path / name
        files[name] = path.read_bytes() if path.is_file() else None
    return {
        "head": clone.git("rev-parse", "HEAD"),
        "branch": clone.git("symbolic-ref", "-q", "--short", "HEAD"),
        "refs": clone.git("for-each-ref", "--format=%(refname) %(objectname)"),
        "index": clone.git("ls-files", "--stage"),
        "status": clone.git("status", "--porcelain", "--ignored"),
        "files": files,
        "merging": (clone.path / ".git" / "MERGE_HEAD").exists(),
    }


def write_hook(clone_or_bare: Path, name: str, body: str) -> None:
    """An executable hook script in a work tree's .git/hooks (or a bare repo's)."""
    hooks = clone_or_bare / ".git" / "hooks"
    if not hooks.parent.is_dir():
        hooks = clone_or_bare / "hooks"
    hooks.mkdir(exist_ok=True)
    hook = hooks / name
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)
