"""bump, next, current and changelog on real repositories: behaviour and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.gitworld import Clone, make_origin, run_release


def state(clone: Clone) -> tuple[str, str, list[str], str]:
    """Everything a refusal must leave alone."""
    return (
        clone.version,
        clone.git("rev-parse", "HEAD"),
        clone.tags(),
        clone.git("status", "--porcelain"),
    )


def assert_refused(clone: Clone, words: str, *args: str) -> None:
    """Exit 2, one line on stderr containing `words`, nothing on stdout or on disk."""
    before = state(clone)
    result = clone.release(*(args or ("bump",)))
    assert result.code == 2, result
    assert result.out == ""
    assert result.err.count("\n") == 1 and words in result.err, result.err
    assert state(clone) == before


def test_bump_twice_on_the_same_commit_changes_nothing(dev: Clone) -> None:
    dev.commit("feat: one")
    assert dev.bump() == "0.2.0-dev.1"
    head = dev.git("rev-parse", "HEAD")
    second = dev.release("bump")
    assert (second.code, second.out) == (0, "0.2.0-dev.1\n")
    assert "already a release commit" in second.err
    assert dev.git("rev-parse", "HEAD") == head


def test_release_twice_changes_nothing_and_still_reports_released(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.commit("fix: one")
    dev.bump()
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    assert dev.bump() == "0.1.1"
    head, tags = dev.git("rev-parse", "HEAD"), dev.tags()
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert dev.bump() == "0.1.1"
    assert (dev.git("rev-parse", "HEAD"), dev.tags()) == (head, tags)
    assert output.read_text() == (
        "version=0.1.1\nprevious=0.1.1\nreleased=true\nlatest=true\n"
        f"changed=false\nsha={head}\n"
    )


def test_tag_at_head_is_idempotent_even_without_a_release_commit(
    project: Clone,
) -> None:
    result = project.release("bump")
    assert (result.code, result.out) == (0, "0.1.0\n")
    assert "already part of v0.1.0" in result.err


def test_github_output_on_dev_and_on_master(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    dev.commit("fix: one")
    dev.bump()
    dev_build = dev.git("rev-parse", "HEAD")
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    monkeypatch.setenv("GITHUB_REF_NAME", "master")
    dev.bump()
    assert output.read_text().splitlines() == [
        "version=0.1.1-dev.1",
        "previous=0.1.0",
        "released=false",
        "latest=false",
        "changed=true",
        f"sha={dev_build}",
        "version=0.1.1",
        "previous=0.1.1-dev.1",
        "released=true",
        "latest=true",
        "changed=true",
        f"sha={dev.git('rev-parse', 'HEAD')}",
    ]


def test_next_prints_and_writes_nothing(dev: Clone) -> None:
    dev.commit("feat: one")
    before = state(dev)
    result = dev.release("next")
    assert (result.code, result.out) == (0, "0.2.0-dev.1\n")
    assert state(dev) == before


def test_dry_run_writes_nothing(dev: Clone, tmp_path: Path) -> None:
    dev.commit("fix: one")
    before = state(dev)
    result = dev.release("bump", "--dry-run")
    assert (result.code, result.out) == (0, "0.1.1-dev.1\n")
    assert "dry run" in result.err
    assert state(dev) == before


def test_other_branches_leave_version_alone(dev: Clone) -> None:
    dev.git("checkout", "-q", "-b", "feature/tags")
    dev.commit("feat: tags")
    result = dev.release("bump")
    assert (result.code, result.out) == (0, "0.1.0\n")
    assert "neither the dev branch nor a release branch" in result.err
    assert dev.git("log", "-1", "--format=%s") == "feat: tags"


def test_current_prints_version(project: Clone) -> None:
    assert project.release("current").out == "0.1.0\n"


def test_changelog_prints_the_next_release_notes(dev: Clone) -> None:
    dev.commit("fix(api): empty tags")
    dev.commit("feat: tags\n\nBREAKING CHANGE: the tag route moved")
    dev.commit("chore: tidy")
    dev.commit("not conventional at all")
    dev.bump()
    notes = dev.release("changelog").out
    lines = notes.splitlines()
    assert lines[0].startswith("## [1.0.0] - ")
    order = [line for line in lines if line.startswith("### ")]
    assert order == ["### Breaking changes", "### Bug fixes", "### Chores", "### Other"]
    assert any(line.startswith("- **api:** empty tags (") for line in lines)
    assert not any("chore(release)" in line for line in lines)
    since = dev.release("changelog", "--since", "HEAD~2").out
    assert "empty tags" not in since and "not conventional at all" in since


def test_detached_head_with_branch_pushes_to_that_branch(dev: Clone) -> None:
    dev.commit("fix: one")
    dev.git("push", "-q", "origin", "dev")
    dev.git("checkout", "-q", "--detach")
    assert dev.bump("--branch", "dev", "--push") == "0.1.1-dev.1"
    assert dev.git("ls-remote", "origin", "refs/heads/dev").split()[0] == dev.git(
        "rev-parse", "HEAD"
    )


def test_github_ref_name_names_the_branch(
    dev: Clone, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.git("checkout", "-q", "--detach")
    monkeypatch.setenv("GITHUB_REF_NAME", "dev")
    dev.commit("feat: one")
    assert dev.bump() == "0.2.0-dev.1"


def test_hand_aimed_version_is_kept(dev: Clone) -> None:
    (dev.path / "VERSION").write_text("2.0.0-dev.0\n")
    dev.git("commit", "-qam", "chore: aim for 2.0.0")
    assert dev.bump() == "2.0.0-dev.1"
    dev.commit("fix: one")
    assert dev.bump() == "2.0.0-dev.2"


def test_no_tags_and_a_dev_build_counts_from_its_own_target(tmp_path: Path) -> None:
    clone = make_origin(tmp_path, version="0.1.0-dev.3", tag=False)
    clone.git("checkout", "-q", "-b", "dev")
    clone.commit("feat: first feature")
    assert clone.bump() == "0.1.0-dev.4"
    clone.checkout("master")
    clone.merge("dev", "Merge branch 'dev'")
    assert clone.bump() == "0.1.0"
    assert clone.tags() == ["v0.1.0"]
    assert "## [0.1.0] - " in clone.changelog and "first feature" in clone.changelog


def test_no_tags_and_a_release_version_counts_as_released(tmp_path: Path) -> None:
    clone = make_origin(tmp_path, version="1.4.2", tag=False)
    clone.git("checkout", "-q", "-b", "dev")
    clone.commit("fix: one")
    assert clone.bump() == "1.4.3-dev.1"


def test_hotfix_on_master_bumps_the_release(dev: Clone) -> None:
    dev.checkout("master")
    dev.git("checkout", "-q", "-b", "hotfix/crash")
    dev.commit("fix: crash on start")
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "hotfix/crash")
    assert dev.bump() == "0.1.1"
    assert dev.tags() == ["v0.1.0", "v0.1.1"]
    annotation = dev.git("tag", "-l", "--format=%(contents)", "v0.1.1")
    assert annotation.startswith("## [0.1.1] - ") and "crash on start" in annotation


def test_dev_not_merged_back_after_a_hotfix_counts_from_it(dev: Clone) -> None:
    dev.checkout("master")
    dev.commit("fix: hotfix")
    assert dev.bump() == "0.1.1"
    dev.checkout("dev")
    dev.commit("fix: on dev")
    assert dev.bump() == "0.1.2-dev.1"


def test_settings_from_pyproject(dev: Clone) -> None:
    (dev.path / "pyproject.toml").write_text(
        '[tool.release]\ndev-branch = "develop"\nrelease-branches = ["stable"]\n'
        'tag-prefix = "release-"\nchangelog = "NEWS.md"\nversion-file = "VERSION"\n'
    )
    dev.git("add", "pyproject.toml")
    dev.commit("build: release settings")
    dev.git("tag", "release-0.1.0", "v0.1.0")
    dev.git("checkout", "-q", "-b", "develop")
    assert dev.bump() == "0.1.1-dev.1"
    dev.git("checkout", "-q", "-b", "stable")
    assert dev.bump() == "0.1.1"
    assert "release-0.1.1" in dev.tags() and (dev.path / "NEWS.md").exists()
    dev.checkout("dev")
    result = dev.release("bump")
    assert "neither the dev branch" in result.err


def test_fallback_identity_when_git_has_none(
    dev: Clone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bare-gitconfig"
    bare.write_text("[user]\n\tuseConfigOnly = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(bare))
    for name in ("EMAIL", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    identity = ("-c", "user.name=Dev", "-c", "user.email=dev@example.invalid")
    dev.git(*identity, "commit", "--allow-empty", "-qm", "fix: x")
    assert dev.bump() == "0.1.1-dev.1"
    assert dev.git("log", "-1", "--format=%ae") == "release@prework.invalid"


# --- refusals: one line, exit 2, nothing written ---------------------------------


def test_refuses_a_dirty_work_tree(dev: Clone) -> None:
    dev.commit("fix: one")
    (dev.path / "untracked.txt").write_text("untracked files do not count\n")
    assert dev.release("next").code == 0
    (dev.path / "VERSION").write_text("0.1.0\n\n")
    assert_refused(dev, "uncommitted changes")
    assert_refused(dev, "uncommitted changes", "bump", "--dry-run")


def test_refuses_a_shallow_clone(dev: Clone, tmp_path: Path) -> None:
    dev.commit("fix: one")
    dev.git("push", "-q", "origin", "dev")
    shallow = tmp_path / "shallow"
    origin = (tmp_path / "origin.git").as_uri()
    dev.git("clone", "-q", "--depth", "1", "--branch", "dev", origin, str(shallow))
    assert_refused(Clone(shallow), "shallow")


def test_refuses_a_clone_without_tags(dev: Clone, tmp_path: Path) -> None:
    dev.commit("fix: one")
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    dev.bump("--push")
    lacking = tmp_path / "no-tags"
    dev.git("clone", "-q", "--no-tags", str(tmp_path / "origin.git"), str(lacking))
    clone = Clone(lacking)
    clone.commit("fix: two")
    assert_refused(clone, "tag v0.1.1 is missing")


@pytest.mark.parametrize(
    "text",
    ["1.2", "v1.2.3", "1.2.3.dev4", "1.2.3-dev", "01.2.3", "", " 1.2.3", "1.2.3\n"],
)
def test_refuses_a_malformed_version(dev: Clone, text: str) -> None:
    (dev.path / "VERSION").write_text(f"{text}\n")
    dev.git("commit", "-qam", "chore: break VERSION")
    assert_refused(dev, "expected X.Y.Z or X.Y.Z-dev.N")
    assert_refused(dev, "expected X.Y.Z or X.Y.Z-dev.N", "current")


def test_refuses_a_version_below_a_release_head_contains(dev: Clone) -> None:
    (dev.path / "VERSION").write_text("0.0.9\n")
    dev.git("commit", "-qam", "chore: lower VERSION")
    assert_refused(dev, "below the newest release tag v0.1.0")


def test_refuses_a_release_not_above_a_tag_head_does_not_contain(dev: Clone) -> None:
    dev.commit("fix: one")
    dev.bump()
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    elsewhere = dev.git("commit-tree", "-m", "released elsewhere", "HEAD^{tree}")
    dev.git("tag", "v0.5.0", elsewhere)
    assert_refused(dev, "0.1.1 would not be above the newest release tag v0.5.0")


def test_refuses_a_detached_head_without_branch(dev: Clone) -> None:
    dev.commit("fix: one")
    dev.git("checkout", "-q", "--detach")
    assert_refused(dev, "--branch")
    assert_refused(dev, "--branch", "next")


def test_refuses_outside_a_git_work_tree(tmp_path: Path) -> None:
    result = run_release(tmp_path, "current")
    assert result.code == 2 and "not inside a git work tree" in result.err


def test_refuses_unknown_settings(dev: Clone) -> None:
    (dev.path / "pyproject.toml").write_text('[tool.release]\ndev = "develop"\n')
    dev.git("add", "pyproject.toml")
    dev.commit("build: typo in settings")
    assert_refused(dev, "unknown [tool.release] setting 'dev'")
