"""The commit-msg hook: Conventional Commits pass, so do merges and reverts."""

from __future__ import annotations

import subprocess  # nosec B404 - the real git commit runs the hook
from pathlib import Path

import pytest
import yaml

from tests.release.gitworld import ROOT, Clone, install_commit_msg_hook, run_release

GOOD = [
    "feat: list notes by tag",
    "fix(api)!: drop v1 routes",
    "docs: readme\n\nLonger text.\n\nBREAKING CHANGE: none really",
    "chore(release): 0.2.0\n\nRelease-Tool: python -m release bump",
    "feat: with git's comments\n# Please enter the commit message\n",
    "fix: scissors\n# ------------------------ >8 ------------------------\ndiff here",
]
MERGES_AND_REVERTS = [
    "Merge branch 'dev'",
    "Merge pull request #12 from someone/feature/tags",
    "Merge remote-tracking branch 'origin/dev' into dev",
    'Revert "feat: list notes by tag"\n\nThis reverts commit abc.',
    "fixup! feat: list notes by tag",
]
BAD = [
    "added stuff",
    "feature: not a known type",
    "feat:missing space",
    "feat(): empty scope",
    "feat: body\nwithout a blank line",
    "# only a comment\n",
]


def check(tmp_path: Path, message: str) -> tuple[int, str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    result = run_release(tmp_path, "check-commit-msg", str(path))
    return result.code, result.err


@pytest.mark.parametrize("message", GOOD + MERGES_AND_REVERTS)
def test_accepted(tmp_path: Path, message: str) -> None:
    assert check(tmp_path, message) == (0, "")


@pytest.mark.parametrize("message", BAD)
def test_rejected_with_the_expected_form(tmp_path: Path, message: str) -> None:
    code, err = check(tmp_path, message)
    assert code == 2 and err.count("\n") == 1
    assert "<type>[(<scope>)][!]: <description>" in err or "blank line" in err


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    result = run_release(tmp_path, "check-commit-msg", str(tmp_path / "missing"))
    assert result.code == 2 and "cannot read commit message file" in result.err


def test_pre_commit_runs_it_at_the_commit_msg_stage() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert "commit-msg" in config["default_install_hook_types"]
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    hook = hooks["conventional-commit-message"]
    assert hook["entry"] == "python -m release check-commit-msg"
    assert hook["stages"] == ["commit-msg"] and hook["language"] == "python"


@pytest.mark.slow
def test_git_commit_runs_the_hook(project: Clone) -> None:
    """git itself calls the hook with the message file, as pre-commit installs it."""
    install_commit_msg_hook(project)
    rejected = commit_through_git(project, "added stuff")
    assert rejected.returncode != 0 and "not a Conventional Commit" in rejected.stderr
    assert commit_through_git(project, "feat: a real feature").returncode == 0
    project.git("checkout", "-q", "-b", "side")
    (project.path / "notes.txt").write_text("side\n")
    project.git("add", "notes.txt")
    assert commit_through_git(project, "docs: notes").returncode == 0
    project.checkout("master")
    assert commit_through_git(project, "fix: on master").returncode == 0
    project.git("merge", "--no-ff", "--no-edit", "side")
    assert project.git("log", "-1", "--format=%s") == "Merge branch 'side'"
    project.git("revert", "--no-edit", "HEAD^2")
    assert project.git("log", "-1", "--format=%s") == 'Revert "docs: notes"'


def commit_through_git(clone: Clone, message: str) -> subprocess.CompletedProcess[str]:
    """`git commit` with hooks enabled (Clone.commit skips them)."""
    return subprocess.run(  # nosec B603 B607 - fixed git argv
        ["git", "commit", "--allow-empty", "-q", "-m", message],
        cwd=clone.path,
        capture_output=True,
        text=True,
        check=False,
    )
