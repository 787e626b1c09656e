"""`python -m release` as its own process, the way CI calls it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.gitworld import Clone, run_release_process


@pytest.mark.slow
def test_bump_push_as_a_process_writes_github_output(
    dev: Clone, tmp_path: Path
) -> None:
    dev.commit("feat: tags")
    output = tmp_path / "github_output"
    result = run_release_process(
        dev.path,
        "bump",
        "--push",
        env={"GITHUB_OUTPUT": str(output), "GITHUB_REF_NAME": "dev"},
    )
    assert (result.code, result.out) == (0, "0.2.0-dev.1\n")
    assert "0.1.0 -> 0.2.0-dev.1" in result.err
    remote = dev.git("ls-remote", "origin", "refs/heads/dev").split()[0]
    assert remote == dev.git("rev-parse", "HEAD")
    assert output.read_text() == (
        "version=0.2.0-dev.1\nprevious=0.1.0\nreleased=false\nlatest=false\n"
        f"changed=true\nsha={remote}\n"
    )


@pytest.mark.slow
def test_next_and_current_as_processes(dev: Clone) -> None:
    dev.commit("fix: one")
    assert (
        run_release_process(dev.path, "next", "--branch", "dev").out == "0.1.1-dev.1\n"
    )
    assert run_release_process(dev.path, "current").out == "0.1.0\n"


@pytest.mark.slow
def test_refusal_as_a_process_is_one_line_and_exit_2(dev: Clone) -> None:
    (dev.path / "VERSION").write_text("1.0\n")
    result = run_release_process(dev.path, "bump")
    assert (result.code, result.out) == (2, "")
    assert result.err.count("\n") == 1 and "uncommitted changes" in result.err


@pytest.mark.slow
def test_push_to_a_missing_remote_fails_with_exit_1(dev: Clone) -> None:
    head = dev.commit("fix: one")
    result = run_release_process(dev.path, "bump", "--push", "--remote", "nowhere")
    assert result.code == 1 and "git push to nowhere failed" in result.err
    assert (dev.git("rev-parse", "HEAD"), dev.version) == (head, "0.1.0\n")


@pytest.mark.slow
def test_the_guard_and_sync_as_processes_write_github_output(
    dev: Clone, tmp_path: Path
) -> None:
    dev.commit("fix: one")
    dev.bump()
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    dev.bump()
    dev.git("push", "-q", "origin", "master", "dev", "--tags")
    dev.checkout("dev")
    output = tmp_path / "github_output"
    env = {"GITHUB_OUTPUT": str(output), "GITHUB_REF_NAME": "dev"}
    synced = run_release_process(dev.path, "sync", "--push", env=env)
    assert (synced.code, synced.out) == (0, "0.1.1\n"), synced.err
    guard = run_release_process(
        dev.path, "own-commit", env={**env, "GITHUB_SHA": dev.git("rev-parse", "HEAD")}
    )
    assert (guard.code, guard.out) == (0, "true\n")
    assert guard.err.count("\n") == 1 and "nothing to check or version" in guard.err
    tip = dev.git("ls-remote", "origin", "refs/heads/dev").split()[0]
    assert output.read_text() == (f"synced=true\nversion=0.1.1\nsha={tip}\nown=true\n")
