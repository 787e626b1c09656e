"""`sync`: the newest release merged into dev on real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from release.changelog import merge_changelogs
from tests.release.gitworld import Clone, clone_of_origin, everything, write_hook

# What GitHub's receive side says; git prefixes the hook's stderr with "remote: ".
GH006 = "echo 'GH006: Protected branch update failed for refs/heads/dev.' >&2\nexit 1\n"


def release_from_dev(clone: Clone, *messages: str) -> str:
    """Commit `messages` on dev with a build each, merge into master, release."""
    clone.checkout("dev")
    for message in messages:
        clone.commit(message)
        clone.bump()
    clone.checkout("master")
    clone.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    version = clone.bump()
    clone.checkout("dev")
    return version


def test_a_dev_that_built_nothing_since_the_cut_takes_the_release(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert release_from_dev(dev, "fix: handle empty tags", "feat: tags") == "0.2.0"
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    result = dev.release("sync")
    assert (result.code, result.out) == (0, "0.2.0\n"), result.err
    assert "merged v0.2.0 into dev, VERSION 0.2.0" in result.err
    assert dev.version == "0.2.0\n"
    assert (
        dev.git("log", "-1", "--format=%s") == "chore(release): merge v0.2.0 into dev"
    )
    assert dev.git("rev-parse", "HEAD^2") == dev.git("rev-parse", "v0.2.0^{commit}")
    assert dev.changelog.count("## [0.2.0]") == 1
    head = dev.git("rev-parse", "HEAD")
    assert output.read_text() == f"synced=true\nversion=0.2.0\nsha={head}\n"
    assert dev.git("status", "--porcelain") == ""
    assert dev.release("own-commit").out == "true\n"  # the guard skips it on dev
    assert dev.release("own-commit", "--branch", "master").out == "false\n"
    # The worked example goes on from here: the next fix starts a new cycle.
    again = dev.release("bump")
    assert "merge of a release" in again.err and dev.version == "0.2.0\n"
    dev.commit("fix: cache key")
    assert dev.bump() == "0.2.1-dev.1"


def test_a_push_the_release_merge_took_along_still_gets_checked_and_versioned(
    dev: Clone,
) -> None:
    """A push lands on dev while the release runs, before the back-merge: the merge
    takes it along, so the merge is not finished work; its run checks and versions."""
    assert release_from_dev(dev, "feat: tags") == "0.2.0"
    dev.commit("fix: pushed while the release ran")
    assert dev.release("sync").code == 0
    guard = dev.release("own-commit")
    assert guard.out == "false\n" and "still has to check and version" in guard.err
    assert dev.bump() == "0.2.1-dev.1"
    assert dev.release("own-commit").out == "true\n"
    # Once dev's tip before a merge is versioned, the merge is finished work again.
    release_from_dev(dev)
    assert dev.release("sync").code == 0
    assert dev.release("own-commit").out == "true\n"
    again = dev.release("bump")
    assert "merge of a release" in again.err, again.err


def test_dev_ahead_keeps_its_version_and_every_section_once(dev: Clone) -> None:
    release_from_dev(dev, "fix: one")
    assert dev.release("sync").code == 0
    dev.commit("feat: two")
    assert dev.bump() == "0.2.0-dev.1"
    changelog = dev.path / "CHANGELOG.md"
    text = changelog.read_text()
    marker = "## [0.1.1]"
    changelog.write_text(
        text.replace(marker, "## [Unreleased]\n\n- two is coming\n\n" + marker)
    )
    dev.git("commit", "-qam", "docs: unreleased notes")
    assert dev.bump() == "0.2.0-dev.2"
    dev.checkout("master")
    dev.commit("fix: hotfix")
    assert dev.bump() == "0.1.2"
    dev.checkout("dev")
    result = dev.release("sync")
    assert result.code == 0, result.err
    assert dev.version == "0.2.0-dev.2\n"
    log = dev.changelog
    assert log.count("## [0.1.2]") == 1 and log.count("## [0.1.1]") == 1
    assert log.count("- two is coming") == 1
    assert log.index("[Unreleased]") < log.index("[0.1.2]") < log.index("[0.1.1]")
    assert "<<<<<<<" not in log and dev.git("status", "--porcelain") == ""
    dev.commit("fix: three")
    assert dev.bump() == "0.2.0-dev.3"


def test_any_other_conflict_leaves_everything_as_it_was(dev: Clone) -> None:
    for branch, text in (("dev", "dev's words\n"), ("master", "master's words\n")):
        dev.checkout(branch)
        (dev.path / "README.txt").write_text(text)
        dev.git("add", "README.txt")
        dev.commit("docs: readme")
        dev.bump()
    dev.checkout("dev")
    before = everything(dev)
    result = dev.release("sync")
    assert (result.code, result.out) == (2, "")
    assert result.err.count("\n") == 1
    assert "v0.1.1 conflicts with dev in README.txt" in result.err
    assert everything(dev) == before


def test_nothing_to_merge_writes_nothing(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    before = everything(dev)
    result = dev.release("sync", "--push")
    assert (result.code, result.out) == (0, "0.1.0\n")
    assert "dev already contains v0.1.0: nothing to merge" in result.err
    assert everything(dev) == before
    assert output.read_text().startswith("synced=false\n")


def test_sync_runs_only_on_the_dev_branch(project: Clone) -> None:
    before = everything(project)
    result = project.release("sync")
    assert result.code == 2 and "checked out, not master" in result.err
    assert everything(project) == before


def test_push_retries_when_dev_moved(dev: Clone, tmp_path: Path) -> None:
    release_from_dev(dev, "feat: one")
    dev.git("push", "-q", "origin", "master", "dev", "--tags")
    other = clone_of_origin(tmp_path, "other", "dev")
    moved = other.commit("docs: pushed meanwhile")
    other.git("push", "-q", "origin", "dev")
    result = dev.release("sync", "--push")
    assert result.code == 0, result.err
    assert "moved while merging v0.2.0" in result.err
    tip = dev.git("ls-remote", "origin", "refs/heads/dev").split()[0]
    assert tip == dev.git("rev-parse", "HEAD")
    for commit in (moved, "v0.2.0"):
        dev.git("merge-base", "--is-ancestor", commit, tip)


def test_a_refused_push_fails_in_one_line_and_takes_the_merge_back(
    dev: Clone, tmp_path: Path
) -> None:
    release_from_dev(dev, "feat: one")
    dev.git("push", "-q", "origin", "master", "dev", "--tags")
    write_hook(tmp_path / "origin.git", "pre-receive", GH006)
    before = everything(dev)
    result = dev.release("sync", "--push")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "remote: GH006: Protected branch update failed" in result.err
    assert everything(dev) == before


def test_changelog_merge_keeps_each_release_once_newest_first() -> None:
    ours = (
        "# Changelog\n\n## [Unreleased]\n\n- soon\n\n"
        "## [0.2.0] - 2026-01-02\n\n- b\n\n## [0.1.0] - 2026-01-01\n\n- a\n"
    )
    released = (
        "# Changelog\n\n## [0.2.1] - 2026-01-03\n\n- c\n\n"
        "## [0.2.0] - 2026-01-02\n\n- b (as released)\n\n"
        "## [0.1.0] - 2026-01-01\n\n- a\n"
    )
    assert merge_changelogs(ours, released) == (
        "# Changelog\n\n## [Unreleased]\n\n- soon\n\n"
        "## [0.2.1] - 2026-01-03\n\n- c\n\n"
        "## [0.2.0] - 2026-01-02\n\n- b (as released)\n\n"
        "## [0.1.0] - 2026-01-01\n\n- a\n"
    )
    assert merge_changelogs("", "## [0.1.0] - x\n\n- a\n").startswith("# Changelog")


def test_a_failed_signature_leaves_dev_as_it_was(dev: Clone, tmp_path: Path) -> None:
    release_from_dev(dev, "feat: one")
    program = tmp_path / "failing-gpg"
    program.write_text("#!/bin/sh\necho 'gpg: signing failed' >&2\nexit 2\n")
    program.chmod(0o755)
    dev.git("config", "commit.gpgSign", "true")
    dev.git("config", "gpg.program", str(program))
    before = everything(dev)
    result = dev.release("sync")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "git commit-tree failed" in result.err
    assert everything(dev) == before


OLD_CHANGELOG = """# Changelog

## [Unreleased]

## [v0.1.0] - 2020-01-02

Hand-written, with a prefix.

## [0.1.0-rc.1] - 2020-01-01

A release candidate.

## [0.0.9] - 2019-12-01

Parsed.

## [1.0]

Odd, but released.
"""


def test_sync_keeps_changelog_sections_it_cannot_parse_in_place(dev: Clone) -> None:
    dev.checkout("master")
    (dev.path / "CHANGELOG.md").write_text(OLD_CHANGELOG)
    dev.git("add", "CHANGELOG.md")
    dev.commit("docs: the old changelog")
    dev.checkout("dev")
    dev.git("merge", "-q", "--ff-only", "master")
    text = OLD_CHANGELOG.replace("## [Unreleased]\n", "## [Unreleased]\n\n- soon\n")
    (dev.path / "CHANGELOG.md").write_text(text)
    dev.git("add", "CHANGELOG.md")
    dev.commit("docs: what is coming")
    dev.checkout("master")
    dev.commit("fix: hotfix")
    assert dev.bump() == "0.1.1"
    dev.checkout("dev")
    assert dev.release("sync").code == 0
    merged = dev.changelog
    assert "- soon" in merged and merged.count("## [0.1.1]") == 1
    order = ["## [0.1.1]", "## [v0.1.0]", "## [0.1.0-rc.1]", "## [0.0.9]", "## [1.0]"]
    positions = [merged.index(heading) for heading in order]
    assert positions == sorted(positions), merged
    for words in ("with a prefix.", "A release candidate.", "Odd, but released."):
        assert merged.count(words) == 1, merged


def test_sync_takes_the_version_from_the_tags_name(dev: Clone) -> None:
    dev.commit("fix: one")
    assert dev.bump() == "0.1.1-dev.1"
    dev.checkout("master")
    dev.commit("feat: released by hand, VERSION forgotten")
    dev.git("tag", "-a", "v0.2.0", "-m", "by hand")
    dev.checkout("dev")
    result = dev.release("sync")
    assert (result.code, result.out) == (0, "0.2.0\n"), result.err
    dev.commit("fix: after")
    assert dev.bump() == "0.2.1-dev.1"


def test_a_crlf_version_is_read_alike_by_every_command(dev: Clone) -> None:
    dev.checkout("master")
    dev.commit("fix: hotfix")
    assert dev.bump() == "0.1.1"
    dev.checkout("dev")
    (dev.path / "VERSION").write_bytes(b"0.1.0\r\n")
    dev.git("add", "VERSION")
    dev.commit("chore: VERSION from a Windows checkout")
    assert dev.release("current").out == "0.1.0\n"
    assert dev.release("next").out == "0.1.2-dev.1\n"
    result = dev.release("sync")
    assert (result.code, result.out) == (0, "0.1.1\n"), result.err
    dev.commit("fix: two")
    assert dev.bump() == "0.1.2-dev.1"
    assert dev.release("own-commit").out == "true\n"


def test_a_shallow_clone_is_refused_before_anything_is_written(
    dev: Clone, tmp_path: Path
) -> None:
    release_from_dev(dev, "feat: one")
    dev.git("push", "-q", "origin", "master", "dev", "--tags")
    shallow = Clone(tmp_path / "shallow")
    origin = (tmp_path / "origin.git").as_uri()
    clone = ["clone", "-q", "--depth", "1", "--no-single-branch"]
    dev.git(*clone, origin, str(shallow.path))
    shallow.git("fetch", "-q", "--depth", "1", "origin", "tag", "v0.2.0")
    shallow.checkout("dev")
    before = everything(shallow)
    result = shallow.release("sync")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "this clone is shallow" in result.err and result.out == ""
    assert everything(shallow) == before
