"""Repositories as people keep them: other encodings, look-alike commits, races."""

from __future__ import annotations

import os
import subprocess  # nosec B404 - the real git commit runs the hook
from pathlib import Path

import pytest

from tests.release.gitworld import (
    Clone,
    clone_of_origin,
    git,
    install_commit_msg_hook,
    make_origin,
)
from tests.release.test_push_race import finish, gate_push, start_bump
from devstack import wait_until


def commit_latin1(clone: Clone, message: str) -> None:
    """A commit whose message git records in latin1, as such a repository does."""
    path = clone.path / ".git" / "MESSAGE"
    path.write_bytes(message.encode("latin1"))
    clone.git("commit", "--allow-empty", "--no-verify", "-q", "-F", str(path))


def test_a_latin1_repository_releases_with_its_text_right(tmp_path: Path) -> None:
    clone = make_origin(tmp_path)
    clone.git("config", "i18n.commitEncoding", "latin1")
    clone.git("checkout", "-q", "-b", "dev")
    commit_latin1(clone, "feat: café au lait")
    commit_latin1(clone, "fix: señor Müller's crème brûlée")
    assert clone.git("log", "-1", "--format=%e") == "latin1"
    assert clone.bump() == "0.2.0-dev.1"
    clone.checkout("master")
    clone.merge("dev", "Merge branch 'dev'")
    assert clone.bump() == "0.2.0"
    changelog = (clone.path / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "- café au lait (" in changelog
    assert "- señor Müller's crème brûlée (" in changelog
    notes = clone.release("changelog", "--since", "v0.1.0").out
    assert "café au lait" in notes
    assert clone.git("status", "--porcelain") == ""


def test_the_commit_msg_hook_reads_latin1_as_git_wrote_it(tmp_path: Path) -> None:
    clone = make_origin(tmp_path)
    clone.git("config", "i18n.commitEncoding", "latin1")
    install_commit_msg_hook(clone)
    message = clone.path / ".git" / "MESSAGE"
    for text, accepted in (("feat: café", True), ("ajouté du café", False)):
        message.write_bytes(text.encode("latin1"))
        result = subprocess.run(  # nosec B603 B607 - fixed git argv
            ["git", "commit", "--allow-empty", "-q", "-F", str(message)],
            cwd=clone.path,
            capture_output=True,
            check=False,
            env=dict(os.environ),
        )
        assert (result.returncode == 0) is accepted, result.stderr
        if not accepted:
            assert "not a Conventional Commit: 'ajouté du café'" in (
                result.stderr.decode("utf-8")
            )


def test_a_persons_release_titled_commit_is_versioned_like_any_other(
    dev: Clone,
) -> None:
    dev.commit("fix: one")
    assert dev.bump() == "0.1.1-dev.1"
    (dev.path / "notes.txt").write_text("a person's change\n")
    dev.git("add", "notes.txt")
    dev.git("commit", "-qm", "chore(release): 0.1.1-dev.1")
    assert dev.bump() == "0.1.1-dev.2"
    dev.checkout("master")
    dev.merge("dev", "Merge branch 'dev'")
    assert dev.bump() == "0.1.1"
    assert "- **release:** 0.1.1-dev.1 (" in dev.changelog  # listed, as a chore


@pytest.mark.slow
def test_two_runs_at_the_same_head_make_one_version(tmp_path: Path) -> None:
    a = make_origin(tmp_path)
    a.git("checkout", "-q", "-b", "dev")
    a.commit("fix: one")
    a.git("push", "-q", "-u", "origin", "dev")
    b = clone_of_origin(tmp_path, "second", "dev")
    waiting, go = gate_push(a, tmp_path)
    run_a = start_bump(a)
    try:
        wait_until(waiting.exists, timeout=60, what="clone a to reach its push")
        assert finish(start_bump(b)) == "0.1.1-dev.1"
    finally:
        go.touch()
    assert finish(run_a) == "0.1.1-dev.1"
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "dev").splitlines()
    assert subjects[:2] == ["chore(release): 0.1.1-dev.1", "fix: one"]
    assert a.git("rev-parse", "HEAD") == b.git("rev-parse", "HEAD")


def test_the_race_retry_merges_with_the_same_identity_fallback(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = clone_of_origin(tmp_path, "other", "dev")
    other.commit("feat: elsewhere")
    assert other.bump("--push") == "0.2.0-dev.1"
    identity = ("-c", "user.name=Dev", "-c", "user.email=dev@example.invalid")
    dev.git(*identity, "commit", "--allow-empty", "-qm", "fix: here")
    bare = tmp_path / "bare-gitconfig"
    bare.write_text("[user]\n\tuseConfigOnly = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(bare))
    for name in ("EMAIL", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    result = dev.release("bump", "--push")
    assert (result.code, result.out) == (0, "0.2.0-dev.2\n"), result.err
    assert "fetching and retrying" in result.err
    merge = dev.git("log", "-1", "--format=%ce", "HEAD^")
    assert merge == "release@prework.invalid"
