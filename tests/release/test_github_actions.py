"""In GitHub Actions `bump --push` versions GITHUB_SHA alone; refused pushes fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.gitworld import (
    Clone,
    clone_of_origin,
    everything,
    git,
    write_hook,
)

GH006 = (
    "echo 'GH006: Protected branch update failed for refs/heads/master.' >&2\n"
    "echo 'Changes must be made through a pull request.' >&2\nexit 1\n"
)


def checkout(tmp_path: Path, name: str, branch: str) -> Clone:
    """What actions/checkout leaves: a full clone on `branch` at the event's commit."""
    return clone_of_origin(tmp_path, name, branch)


class Run:
    """One GitHub Actions run for a push of `sha` to `branch`."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, branch: str, sha: str
    ) -> None:
        self.output = tmp_path / f"output-{sha[:7]}"
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_SHA", sha)
        monkeypatch.setenv("GITHUB_REF_NAME", branch)
        monkeypatch.setenv("GITHUB_OUTPUT", str(self.output))

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)


def pushed(clone: Clone, message: str) -> str:
    sha = clone.commit(message)
    clone.git("push", "-q", "origin", "HEAD")
    return sha


def test_the_checked_commit_is_versioned(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = pushed(dev, "feat: tags")
    run = Run(monkeypatch, tmp_path, "dev", sha)
    assert dev.bump("--push") == "0.2.0-dev.1"
    tip = dev.git("ls-remote", "origin", "refs/heads/dev").split()[0]
    assert dev.git("rev-parse", "HEAD^") == sha
    assert run.outputs() == {
        "version": "0.2.0-dev.1",
        "previous": "0.1.0",
        "released": "false",
        "latest": "false",
        "changed": "true",
        "sha": tip,
    }


def test_a_branch_that_moved_past_the_checked_commit_is_left_to_the_newer_run(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = pushed(dev, "fix: checked here")
    newer = checkout(tmp_path, "newer", "dev")
    newer_sha = pushed(newer, "feat: pushed while the checks ran")
    run = Run(monkeypatch, tmp_path, "dev", checked)
    before = everything(dev)
    result = dev.release("bump", "--push")
    assert (result.code, result.out) == (0, "0.1.0\n")
    assert result.err.count("\n") == 1
    assert f"origin/dev is at {newer_sha[:7]}, past GITHUB_SHA {checked[:7]}" in (
        result.err
    )
    assert {k: v for k, v in everything(dev).items() if k != "refs"} == {
        k: v for k, v in before.items() if k != "refs"
    }
    assert git(tmp_path / "origin.git", "rev-parse", "dev") == newer_sha
    assert run.outputs()["changed"] == "false"
    assert run.outputs()["version"] == "0.1.0"


def test_a_lost_push_race_merges_nothing_it_did_not_check(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = pushed(dev, "fix: checked here")
    newer = checkout(tmp_path, "newer", "dev")
    # The newer push lands between this run's fetch and its push.
    write_hook(
        dev.path,
        "pre-push",
        f"cd {newer.path} && unset GIT_DIR && git commit -q --allow-empty "
        "-m 'feat: newer' && git push -q origin HEAD:dev\n",
    )
    run = Run(monkeypatch, tmp_path, "dev", checked)
    result = dev.release("bump", "--push")
    assert (result.code, result.out) == (0, "0.1.0\n"), result.err
    assert "past GITHUB_SHA" in result.err and "retrying" not in result.err
    assert dev.git("rev-parse", "HEAD") == checked and dev.version == "0.1.0\n"
    subjects = git(tmp_path / "origin.git", "log", "--format=%s", "dev").splitlines()
    assert subjects[0] == "feat: newer" and not any(
        subject.startswith("chore(release)") for subject in subjects
    )
    assert run.outputs()["changed"] == "false"


def test_a_rerun_reports_the_version_it_already_pushed(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.commit("fix: one")
    dev.bump()
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    merge = dev.git("rev-parse", "HEAD")
    dev.git("push", "-q", "origin", "master", "dev")
    Run(monkeypatch, tmp_path, "master", merge)
    assert dev.bump("--push") == "0.1.1"
    first = dev.git("rev-parse", "HEAD")
    again = checkout(tmp_path, "rerun", "master")
    again.git("reset", "-q", "--hard", merge)  # checkout of the event's commit
    run = Run(monkeypatch, tmp_path, "master", merge)
    result = again.release("bump", "--push")
    assert (result.code, result.out) == (0, "0.1.1\n"), result.err
    assert "already has this commit's version 0.1.1" in result.err
    assert run.outputs() == {
        "version": "0.1.1",
        "previous": "0.1.1",
        "released": "true",
        "latest": "true",
        "changed": "false",
        "sha": first,
    }
    assert git(tmp_path / "origin.git", "tag", "--list").split() == ["v0.1.0", "v0.1.1"]


def test_head_must_be_the_checked_commit(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = pushed(dev, "fix: one")
    dev.commit("fix: not checked")
    Run(monkeypatch, tmp_path, "dev", checked)
    before = everything(dev)
    result = dev.release("bump", "--push")
    assert result.code == 2 and f"is not GITHUB_SHA {checked[:7]}" in result.err
    assert everything(dev) == before


def test_a_protected_branch_fails_in_one_line_with_the_remotes_reason(
    dev: Clone, tmp_path: Path
) -> None:
    dev.checkout("master")
    dev.commit("fix: hotfix")
    write_hook(tmp_path / "origin.git", "pre-receive", GH006)
    before = everything(dev)
    result = dev.release("bump", "--push")
    assert (result.code, result.out) == (1, "")
    assert result.err.count("\n") == 1 and "retrying" not in result.err
    assert (
        "git push to origin refused: remote: GH006: Protected branch update failed "
        "for refs/heads/master." in result.err
    )
    assert everything(dev) == before
    assert git(tmp_path / "origin.git", "tag", "--list").split() == ["v0.1.0"]


def test_own_commit_tells_the_tools_commits_from_a_persons(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.commit("fix: one")
    dev.bump()
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    own = dev.release("own-commit")
    assert (own.code, own.out) == (0, "true\n")
    assert "is the release tool's own commit" in own.err
    assert "nothing to check or version" in own.err
    persons = dev.release("own-commit", "HEAD~1")
    assert (persons.code, persons.out) == (0, "false\n")
    assert output.read_text() == "own=true\nown=false\n"
    # The same title and trailer on a commit that changes other files: a person's.
    (dev.path / "notes.txt").write_text("notes\n")
    (dev.path / "VERSION").write_text("0.1.1-dev.2\n")
    dev.git("add", "notes.txt", "VERSION")
    dev.git(
        "commit",
        "-qm",
        "chore(release): 0.1.1-dev.2",
        "-m",
        "Release-Tool: python -m release bump",
    )
    assert dev.release("own-commit").out == "false\n"
    monkeypatch.setenv("GITHUB_SHA", dev.git("rev-parse", "HEAD~1"))
    assert dev.release("own-commit").out == "true\n"  # GITHUB_SHA is the default
    assert dev.release("own-commit", "no-such-rev").code == 2


def test_a_dev_build_fast_forwarded_onto_master_is_still_released(
    dev: Clone, tmp_path: Path
) -> None:
    dev.commit("feat: one")
    dev.bump()
    assert dev.release("own-commit").out == "true\n"
    dev.checkout("master")
    dev.git("merge", "-q", "--ff-only", "dev")
    result = dev.release("own-commit")
    assert result.out == "false\n" and "master still has to" in result.err
    assert dev.release("own-commit", "--branch", "feature/x").out == "false\n"
    assert dev.bump() == "0.2.0"
    assert dev.release("own-commit").out == "true\n"
    assert dev.release("own-commit", "--branch", "dev").out == "false\n"
