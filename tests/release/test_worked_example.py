"""Every row of VERSIONING.md's worked example, played on a real repository."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.release.gitworld import Clone, isolated_git_environment, make_origin


@dataclass(frozen=True)
class Snapshot:
    """What one step left behind: locally and on origin."""

    version: str
    tags: list[str]
    origin_tags: list[str]
    changelog: str
    head_subject: str
    origin_matches_head: bool


def snapshot(clone: Clone, branch: str) -> Snapshot:
    """VERSION, tags and CHANGELOG.md after a step."""
    origin_tags = [
        line.split("refs/tags/")[1]
        for line in clone.git("ls-remote", "--tags", "origin").splitlines()
        if not line.endswith("^{}")
    ]
    origin_head = clone.git("ls-remote", "origin", f"refs/heads/{branch}").split()[0]
    return Snapshot(
        version=clone.version,
        tags=clone.tags(),
        origin_tags=sorted(origin_tags),
        changelog=clone.changelog,
        head_subject=clone.git("log", "-1", "--format=%s"),
        origin_matches_head=origin_head == clone.git("rev-parse", "HEAD"),
    )


def push_to_dev(clone: Clone, message: str) -> Snapshot:
    clone.commit(message)
    clone.git("push", "-q", "origin", "dev")
    clone.bump("--push")
    return snapshot(clone, "dev")


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Snapshot]]:
    """The whole worked example, one snapshot per row (the rows build on each other)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in isolated_git_environment(
            tmp_path_factory.mktemp("home")
        ).items():
            patch.setenv(name, value)
        # Module scope runs before conftest's autouse fixture: drop a CI's variables
        # here too, or inside GitHub Actions the tool versions only GITHUB_SHA.
        for name in (
            "GITHUB_ACTIONS",
            "GITHUB_SHA",
            "GITHUB_REF_NAME",
            "GITHUB_OUTPUT",
        ):
            patch.delenv(name, raising=False)
        clone = make_origin(tmp_path_factory.mktemp("example"))
        rows = {"start": snapshot(clone, "master")}
        clone.git("checkout", "-q", "-b", "dev")
        clone.git("push", "-q", "-u", "origin", "dev")
        rows["fix: handle empty tags"] = push_to_dev(clone, "fix: handle empty tags")
        rows["docs: readme"] = push_to_dev(clone, "docs: readme")
        rows["feat: list notes by tag"] = push_to_dev(clone, "feat: list notes by tag")
        rows["fix: typo"] = push_to_dev(clone, "fix: typo")
        clone.checkout("master")
        clone.merge("dev", "Merge branch 'dev'")
        clone.git("push", "-q", "origin", "master")
        clone.bump("--push")
        rows["merge dev into master"] = snapshot(clone, "master")
        clone.checkout("dev")
        clone.merge("master", "Merge branch 'master' into dev")
        rows["fix: cache key"] = push_to_dev(clone, "fix: cache key")
        rows["feat!: drop v1 routes"] = push_to_dev(clone, "feat!: drop v1 routes")
        yield rows


def test_start_is_the_tagged_release(example: dict[str, Snapshot]) -> None:
    row = example["start"]
    assert (row.version, row.tags, row.origin_tags) == (
        "0.1.0\n",
        ["v0.1.0"],
        ["v0.1.0"],
    )


@pytest.mark.parametrize(
    ("message", "version"),
    [
        ("fix: handle empty tags", "0.1.1-dev.1"),
        ("docs: readme", "0.1.1-dev.2"),
        ("feat: list notes by tag", "0.2.0-dev.1"),
        ("fix: typo", "0.2.0-dev.2"),
    ],
)
def test_push_to_dev_before_the_release(
    example: dict[str, Snapshot], message: str, version: str
) -> None:
    row = example[message]
    assert row.version == f"{version}\n"
    assert row.head_subject == f"chore(release): {version}"
    assert row.origin_matches_head
    assert row.tags == ["v0.1.0"] and row.changelog == ""


def test_merge_dev_into_master_releases_0_2_0(example: dict[str, Snapshot]) -> None:
    row = example["merge dev into master"]
    assert row.version == "0.2.0\n"
    assert row.tags == row.origin_tags == ["v0.1.0", "v0.2.0"]
    assert row.head_subject == "chore(release): 0.2.0"
    assert row.origin_matches_head
    section = row.changelog.split("## [0.2.0] - ", 1)[1]
    features, fixes = section.index("### Features"), section.index("### Bug fixes")
    assert features < fixes < section.index("### Documentation")
    assert "- list notes by tag (" in section
    assert section.index("- handle empty tags") < section.index("- typo")


def test_merge_master_into_dev_then_fix(example: dict[str, Snapshot]) -> None:
    row = example["fix: cache key"]
    assert row.version == "0.2.1-dev.1\n"
    assert row.tags == ["v0.1.0", "v0.2.0"]
    assert row.origin_matches_head


def test_breaking_change_on_dev(example: dict[str, Snapshot]) -> None:
    row = example["feat!: drop v1 routes"]
    assert row.version == "1.0.0-dev.1\n"
    assert row.tags == ["v0.1.0", "v0.2.0"]
    assert row.origin_matches_head
