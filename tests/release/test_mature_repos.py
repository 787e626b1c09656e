"""Mature repositories (issue 21): long histories, user git config, odd messages."""

from __future__ import annotations

import subprocess  # nosec B404 - fast-import builds the long histories
from pathlib import Path

import pytest

from tests.release.gitworld import Clone, everything, git


def fast_import_commits(clone: Clone, messages: list[bytes]) -> None:
    """Empty commits with these raw messages on the checked-out branch, in one go."""
    branch = clone.git("symbolic-ref", "HEAD")
    parent = clone.git("rev-parse", "HEAD")
    chunks = []
    for number, message in enumerate(messages):
        when = 1_700_000_000 + number
        chunks.append(
            f"commit {branch}\ncommitter Long <long@example.invalid> {when} +0000\n"
            f"data {len(message)}\n".encode()
            + message
            + (f"\nfrom {parent}\n\n".encode() if number == 0 else b"\n\n")
        )
    subprocess.run(  # nosec B603 B607 - fixed git argv in a test
        ["git", "fast-import", "--quiet", "--force"],
        cwd=clone.path,
        input=b"".join(chunks),
        check=True,
    )
    clone.git("reset", "-q", "--hard", "HEAD")


def test_a_first_release_over_5000_commits_tags(project: Clone) -> None:
    """The tag message (every commit) is far above one argument's 128 KiB limit."""
    messages = [
        f"fix: handle case {n} of the long history".encode() for n in range(5000)
    ]
    fast_import_commits(project, messages)
    assert project.bump() == "0.1.1"
    notes = project.git("tag", "-l", "--format=%(contents)", "v0.1.1")
    assert "handle case 0 of" in notes and "handle case 4999 of" in notes


def test_latin1_messages_without_an_encoding_header_release(project: Clone) -> None:
    fast_import_commits(
        project,
        [
            "fix: caf\xe9 au lait".encode("latin1"),
            "feat: se\xf1or M\xfcller".encode("latin1"),
            b"fix: not text at all \xff\xfe\x80",
            "docs: plain UTF-8 \u00e9".encode(),
        ],
    )
    assert project.release("next").out == "0.2.0\n"
    assert project.bump() == "0.2.0"
    changelog = (project.path / "CHANGELOG.md").read_text(encoding="utf-8")
    for text in ("caf\xe9 au lait", "se\xf1or M\xfcller", "not text at all", "\u00e9"):
        assert text in changelog
    notes = project.git("tag", "-l", "--format=%(contents)", "v0.2.0")
    assert "caf\xe9 au lait" in notes


def test_a_reverted_dev_build_never_reuses_its_version(dev: Clone) -> None:
    dev.commit("fix: one")
    assert dev.bump() == "0.1.1-dev.1"
    dev.git("revert", "--no-edit", "HEAD")
    assert dev.version == "0.1.0\n"
    assert dev.bump() == "0.1.1-dev.2"
    dev.git("revert", "--no-edit", "HEAD")  # a revert of the new one as well
    dev.commit("fix: two")
    assert dev.bump() == "0.1.1-dev.3"


def test_tags_without_a_prefix(project: Clone) -> None:
    (project.path / "pyproject.toml").write_text('[tool.release]\ntag-prefix = ""\n')
    project.git("add", "pyproject.toml")
    project.commit("build: tags are bare versions, as commitizen makes them")
    project.git("tag", "-d", "v0.1.0")
    project.git("tag", "-a", "0.1.0", "-m", "release 0.1.0", "HEAD~1")
    for look_alike in ("v9.0.0", "9.0.0-dev.1", "release-9.0.0", "09.0.0", "9.0"):
        project.git("tag", look_alike)
    project.commit("feat: one")
    assert project.release("next", "--branch", "dev").out == "0.2.0-dev.1\n"
    assert project.bump() == "0.2.0"
    assert project.git("describe", "--exact-match") == "0.2.0"
    project.commit("fix: two")
    assert project.bump() == "0.2.1"


def test_a_maintenance_branch_releases_within_its_line(
    project: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.commit("feat!: one")
    assert project.bump() == "1.0.0"
    project.git("branch", "release/1.x")
    project.git("branch", "release/1.0.x")
    project.commit("feat!: two")
    assert project.bump() == "2.0.0"
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    project.checkout("release/1.x")
    project.commit("fix: backported")
    assert project.bump() == "1.0.1"
    project.commit("feat: backported too")
    assert project.bump() == "1.1.0"
    assert "released=true\nlatest=false\n" in output.read_text()
    assert project.tags() == ["v0.1.0", "v1.0.0", "v1.0.1", "v1.1.0", "v2.0.0"]
    assert "## [1.1.0]" in project.changelog and "## [2.0.0]" not in project.changelog
    project.commit("feat!: not in this line")
    before = everything(project)
    result = project.release("bump")
    assert result.code == 2 and "outside the 1.x line" in result.err, result.err
    assert everything(project) == before
    project.checkout("release/1.0.x")
    project.commit("feat: a minor is outside a 1.0.x line")
    assert "outside the 1.0.x line" in project.release("bump").err
    project.checkout("master")
    project.commit("fix: on the newest line")
    output.write_text("")
    assert project.bump() == "2.0.1"
    assert "latest=true" in output.read_text()
    assert git(tmp_path / "work", "describe", "--tags", "--exact-match") == "v2.0.1"
