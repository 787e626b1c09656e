"""Two clones of one origin push a dev build at the same time: both land, no force."""

from __future__ import annotations

import subprocess  # nosec B404 - each clone runs the CLI as its own process
import sys
from pathlib import Path

import pytest

from devstack import wait_until
from tests.release.gitworld import Clone, clone_of_origin, git, make_origin, write_hook

# Holds clone A's push until clone B has pushed, so A must lose the first round.
PRE_PUSH_GATE = """touch "{waiting}"
i=0
while [ ! -f "{go}" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
exit 0
"""


def start_bump(clone: Clone) -> subprocess.Popen[str]:
    """`python -m release bump --push` in `clone`, running in the background."""
    return subprocess.Popen(  # nosec B603 - the interpreter running the tests
        [sys.executable, "-m", "release", "bump", "--push"],
        cwd=clone.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def gate_push(clone: Clone, tmp_path: Path) -> tuple[Path, Path]:
    """Hold `clone`'s next push: it touches `waiting`, then waits until `go` exists."""
    waiting, go = tmp_path / "a-waiting", tmp_path / "go"
    write_hook(clone.path, "pre-push", PRE_PUSH_GATE.format(waiting=waiting, go=go))
    return waiting, go


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for a bump; it must succeed. Its printed version."""
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    return out.strip()


def two_clones(tmp_path: Path) -> tuple[Clone, Clone, Path]:
    first = make_origin(tmp_path)
    first.git("checkout", "-q", "-b", "dev")
    first.git("push", "-q", "-u", "origin", "dev")
    origin = tmp_path / "origin.git"
    git(origin, "config", "core.logAllRefUpdates", "always")
    second = clone_of_origin(tmp_path, "second", "dev")
    return first, second, origin


def assert_only_fast_forwards(origin: Path, branch: str) -> None:
    """Every update of the branch on origin kept the old tip in its history."""
    entries = git(origin, "reflog", "--format=%H", f"refs/heads/{branch}").split()
    for newer, older in zip(entries, entries[1:]):
        git(origin, "merge-base", "--is-ancestor", older, newer)


@pytest.mark.slow
@pytest.mark.parametrize("gated", [True, False], ids=["a-loses-first", "free-race"])
def test_two_concurrent_dev_bumps_both_land(tmp_path: Path, gated: bool) -> None:
    a, b, origin = two_clones(tmp_path)
    fix_a, fix_b = a.commit("fix: from clone a"), b.commit("feat: from clone b")
    waiting, go = tmp_path / "a-waiting", tmp_path / "go"
    if gated:
        gate_push(a, tmp_path)
    run_a = start_bump(a)
    try:
        if gated:
            wait_until(waiting.exists, timeout=60, what="clone a to reach its push")
        run_b = start_bump(b)
        version_b = finish(run_b)
    finally:
        go.touch()
    version_a = finish(run_a)
    assert version_a != version_b
    assert {version_a, version_b} <= {"0.2.0-dev.1", "0.2.0-dev.2", "0.1.1-dev.1"}
    tip = git(origin, "rev-parse", "refs/heads/dev")
    for sha in (fix_a, fix_b):
        git(origin, "merge-base", "--is-ancestor", sha, tip)
    subjects = git(origin, "log", "--format=%s", "refs/heads/dev").splitlines()
    for version in (version_a, version_b):
        assert f"chore(release): {version}" in subjects
    assert_only_fast_forwards(origin, "dev")
    if gated:
        assert (version_b, version_a) == ("0.2.0-dev.1", "0.2.0-dev.2")


@pytest.mark.slow
def test_two_concurrent_releases_get_two_tags(tmp_path: Path) -> None:
    a, b, origin = two_clones(tmp_path)
    git(b.path, "checkout", "-q", "master")
    a.checkout("master")
    a.commit("fix: hotfix a")
    b.commit("fix: hotfix b")
    waiting, go = gate_push(a, tmp_path)
    run_a = start_bump(a)
    try:
        wait_until(waiting.exists, timeout=60, what="clone a to reach its push")
        assert finish(start_bump(b)) == "0.1.1"
    finally:
        go.touch()
    assert finish(run_a) == "0.1.2"
    tags = git(origin, "tag", "--list", "--sort=v:refname").split()
    assert tags == ["v0.1.0", "v0.1.1", "v0.1.2"]
    git(origin, "merge-base", "--is-ancestor", "v0.1.1", "v0.1.2")
    assert a.tags() == tags
    assert_only_fast_forwards(origin, "master")


def test_a_conflicting_remote_fails_cleanly_without_forcing(tmp_path: Path) -> None:
    a, b, origin = two_clones(tmp_path)
    for clone, text in ((a, "from a\n"), (b, "from b\n")):
        (clone.path / "notes.txt").write_text(text)
        clone.git("add", "notes.txt")
        clone.commit("docs: notes")
    assert b.bump("--push") == "0.1.1-dev.1"
    head = a.git("rev-parse", "HEAD")
    result = a.release("bump", "--push")
    assert result.code == 1 and "cannot merge origin/dev" in result.err
    assert (a.git("rev-parse", "HEAD"), a.version) == (head, "0.1.0\n")
    assert a.git("status", "--porcelain") == ""
    assert git(origin, "log", "-1", "--format=%s", "dev") == (
        "chore(release): 0.1.1-dev.1"
    )


def test_a_remote_with_unrelated_history_fails_in_one_line(tmp_path: Path) -> None:
    a, b, origin = two_clones(tmp_path)
    # Someone replaced origin's dev with a history of its own (a force push there).
    git(origin, "config", "receive.denyNonFastForwards", "false")
    b.git("checkout", "-q", "--orphan", "elsewhere")
    b.commit("chore: a history of its own")
    b.git("push", "-q", "origin", "+elsewhere:dev")
    head = a.commit("fix: one")
    result = a.release("bump", "--push")
    assert result.code == 1 and "cannot merge origin/dev" in result.err
    assert result.err.splitlines()[-1].startswith("release: cannot merge")
    assert (a.git("rev-parse", "HEAD"), a.version) == (head, "0.1.0\n")
    assert a.git("status", "--porcelain") == ""


HOSTILE_CONFIG = (
    ("merge.ff", "false"),
    ("pull.rebase", "true"),
    ("merge.autoStash", "true"),
    ("push.followTags", "true"),
    ("log.showSignature", "true"),
)


@pytest.mark.slow
@pytest.mark.parametrize("branch", ["dev", "master"])
def test_a_race_loser_fast_forwards_whatever_the_user_config(
    tmp_path: Path, branch: str
) -> None:
    """Two clones bump the same HEAD; the loser lands on the winner's commit."""
    a, b, origin = two_clones(tmp_path)
    for name, value in HOSTILE_CONFIG:
        a.git("config", "--global", name, value)
    a.checkout(branch)
    a.commit("fix: one fix for both")
    a.git("push", "-q", "origin", branch)
    b.git("fetch", "-q", "origin")
    b.git("checkout", "-q", branch)
    b.git("merge", "-q", "--ff-only", f"origin/{branch}")
    waiting, go = gate_push(a, tmp_path)
    run_a = start_bump(a)
    try:
        wait_until(waiting.exists, timeout=60, what="clone a to reach its push")
        version_b = finish(start_bump(b))
    finally:
        go.touch()
    assert finish(run_a) == version_b == ("0.1.1-dev.1" if branch == "dev" else "0.1.1")
    tip = git(origin, "rev-parse", f"refs/heads/{branch}")
    assert a.git("rev-parse", "HEAD") == tip
    assert (
        git(origin, "log", "-1", "--format=%s", tip) == f"chore(release): {version_b}"
    )
    assert git(origin, "tag", "--list").split() == (
        ["v0.1.0"] if branch == "dev" else ["v0.1.0", "v0.1.1"]
    )
