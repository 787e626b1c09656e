"""Issue 21, point 6: one line on stderr, never a traceback, nothing half-done."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - chattr and shallow clones need their own processes
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.release.gitworld import (
    Clone,
    everything,
    git,
    run_release_process,
    write_hook,
)
from tests.release.test_nothing_half_done import on_master_ready_to_release


def assert_one_line(result: object, code: int, *words: str) -> None:
    assert getattr(result, "code") == code, result
    err = str(getattr(result, "err"))
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files made immutable with chattr +i (read-only even for root); undone after."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("needs chattr: install the Debian package e2fsprogs")
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run([chattr, "-i", str(path)], check=False)  # nosec B603


def make_immutable(made: list[Path], path: Path) -> None:
    chattr = shutil.which("chattr") or "chattr"
    probe = subprocess.run(  # nosec B603 - chattr from PATH, fixed argv
        [chattr, "+i", str(path)], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {probe.stderr.strip()}")
    made.append(path)


@pytest.mark.parametrize("name", ["VERSION", "CHANGELOG.md"])
def test_a_read_only_file_fails_in_one_line(
    dev: Clone, immutable: list[Path], name: str
) -> None:
    on_master_ready_to_release(dev)
    (dev.path / "CHANGELOG.md").write_text("# Changelog\n")
    dev.git("add", "CHANGELOG.md")
    dev.commit("docs: a changelog")
    make_immutable(immutable, dev.path / name)
    before = everything(dev)
    result = dev.release("bump")
    assert_one_line(result, 1, "nothing was changed", name)
    assert everything(dev) == before


def test_a_malformed_tool_table_is_refused_in_one_line(project: Clone) -> None:
    (project.path / "pyproject.toml").write_text('tool = "x"\n')
    assert_one_line(project.release("next"), 2, "pyproject.toml", "[tool]")
    (project.path / "pyproject.toml").write_text('[tool]\nrelease = "x"\n')
    assert_one_line(project.release("next"), 2, "[tool.release] must be a table")


def test_github_output_in_a_missing_folder_is_refused_before_the_push(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.commit("fix: one")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "missing" / "output"))
    remote_dev = git(tmp_path / "origin.git", "rev-parse", "dev")
    before = everything(dev)
    result = dev.release("bump", "--push")
    assert_one_line(result, 2, "GITHUB_OUTPUT", "missing")
    assert everything(dev) == before
    assert git(tmp_path / "origin.git", "rev-parse", "dev") == remote_dev


def test_an_untracked_file_in_the_way_of_sync_is_named(dev: Clone) -> None:
    dev.checkout("master")
    (dev.path / "notes.txt").write_text("released\n")
    dev.git("add", "notes.txt")
    dev.commit("fix: notes")
    dev.bump()
    dev.checkout("dev")
    (dev.path / "notes.txt").write_text("a person's own, untracked\n")
    before = everything(dev)
    result = dev.release("sync")
    assert_one_line(result, 2, "notes.txt")
    assert everything(dev) == before
    assert (dev.path / "notes.txt").read_text() == "a person's own, untracked\n"


def test_a_git_older_than_needed_is_named(dev: Clone, tmp_path: Path) -> None:
    dev.checkout("master")
    dev.commit("fix: hotfix")
    dev.bump()
    dev.checkout("dev")
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "old-git"
    folder.mkdir()
    fake = folder / "git"
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = version ] && { echo "git version 2.30.2"; '
        f'exit 0; }}; done\nexec {real} "$@"\n'
    )
    fake.chmod(0o755)
    path = f"{folder}:{Path(sys.executable).parent}:/usr/bin:/bin"
    before = everything(dev)
    result = run_release_process(dev.path, "sync", env={"PATH": path})
    assert_one_line(result, 2, "git 2.30.2 found: sync needs git 2.38")
    assert everything(dev) == before


def test_a_failed_push_says_the_whole_remote_message(
    dev: Clone, tmp_path: Path
) -> None:
    dev.checkout("master")
    dev.commit("fix: hotfix")
    write_hook(
        tmp_path / "origin.git",
        "pre-receive",
        "echo 'GH013: Repository rule violations found for refs/heads/master.' >&2\n"
        "echo '- Changes must be made through a pull request.' >&2\nexit 1\n",
    )
    before = everything(dev)
    result = dev.release("bump", "--push")
    assert_one_line(result, 1, "GH013", "Changes must be made through a pull request")
    assert everything(dev) == before


def test_a_shallow_clone_in_actions_writes_nothing(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = dev.commit("fix: one")
    dev.git("push", "-q", "origin", "dev")
    dev.bump("--push")  # the remote is now this commit's own bump on top
    shallow = Clone(tmp_path / "shallow")
    git(
        tmp_path,
        "clone",
        "-q",
        "--depth",
        "2",
        "-b",
        "dev",
        f"file://{tmp_path / 'origin.git'}",
        str(shallow.path),
    )
    shallow.git("reset", "-q", "--hard", checked)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_SHA", checked)
    monkeypatch.setenv("GITHUB_REF_NAME", "dev")
    before = everything(shallow)
    result = shallow.release("bump", "--push")
    assert_one_line(result, 2, "shallow")
    assert everything(shallow) == before


def test_a_symlinked_changelog_is_refused_and_nothing_is_dirty(dev: Clone) -> None:
    on_master_ready_to_release(dev)
    (dev.path / "docs").mkdir()
    (dev.path / "docs" / "CHANGES.md").write_text("# Changes\n")
    (dev.path / "CHANGELOG.md").symlink_to("docs/CHANGES.md")
    dev.git("add", "CHANGELOG.md", "docs/CHANGES.md")
    dev.commit("docs: the changelog lives in docs")
    before = everything(dev)
    result = dev.release("bump")
    assert_one_line(result, 2, "CHANGELOG.md", "symbolic link")
    assert everything(dev) == before
    assert dev.git("status", "--porcelain") == ""


def test_a_push_that_never_reached_a_remote_says_all_git_said(dev: Clone) -> None:
    dev.commit("fix: one")
    before = everything(dev)
    result = dev.release("bump", "--push", "--remote", "nowhere")
    assert_one_line(result, 1, "'nowhere' does not appear", "repository exists")
    assert everything(dev) == before
