"""Pure parts: version arithmetic, the branch rules, commit parsing, changelog text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version as Pep440Version

from release.changelog import DEFAULT_HEADER, prepend_section, render_section
from release.conventional import bump_level, parse_message
from release.errors import Refusal
from release.policy import PlanError, next_dev_version, next_release_version
from release.settings import BranchRole, Settings, load_settings
from release.version import BumpLevel, MalformedVersion, Version

numbers = st.integers(min_value=0, max_value=40)
versions = st.builds(Version, numbers, numbers, numbers, st.none() | numbers)
levels = st.sampled_from(list(BumpLevel))


@given(versions)
def test_spelling_round_trips_and_is_never_packagings(version: Version) -> None:
    text = str(version)
    assert Version.parse(text) == version
    assert ".dev" not in text


@given(versions, versions)
def test_order_is_packagings_order(left: Version, right: Version) -> None:
    assert (left < right) == (Pep440Version(str(left)) < Pep440Version(str(right)))
    assert (left == right) == (left.pep440() == right.pep440())


def test_dev_builds_order_numerically_and_below_their_release() -> None:
    chain = ["1.3.0-dev.9", "1.3.0-dev.10", "1.3.0", "1.3.1-dev.1", "2.0.0-dev.0"]
    parsed = [Version.parse(text) for text in chain]
    assert parsed == sorted(parsed)
    assert Version(1, 3, 0).__eq__("1.3.0") is NotImplemented


@pytest.mark.parametrize(
    "text", ["1.2", "1.2.3.dev4", "1.2.3-dev", "1.2.3-rc.1", " 1.2.3"]
)
def test_malformed_versions_are_rejected(text: str) -> None:
    with pytest.raises(MalformedVersion):
        Version.parse(text)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (BumpLevel.PATCH, "1.2.4"),
        (BumpLevel.MINOR, "1.3.0"),
        (BumpLevel.MAJOR, "2.0.0"),
    ],
)
def test_bumped(level: BumpLevel, expected: str) -> None:
    assert str(Version.parse("1.2.3-dev.4").bumped(level)) == expected


@pytest.mark.parametrize(
    ("current", "newest", "level", "expected"),
    [
        ("0.1.0", "0.1.0", BumpLevel.PATCH, "0.1.1-dev.1"),
        ("0.1.1-dev.1", "0.1.0", BumpLevel.PATCH, "0.1.1-dev.2"),
        ("0.1.1-dev.2", "0.1.0", BumpLevel.MINOR, "0.2.0-dev.1"),
        ("0.2.0-dev.2", "0.2.0", BumpLevel.PATCH, "0.2.1-dev.1"),
        ("2.0.0-dev.0", "0.2.0", BumpLevel.PATCH, "2.0.0-dev.1"),
        ("0.1.0-dev.3", None, BumpLevel.MINOR, "0.1.0-dev.4"),
        ("1.4.2", None, BumpLevel.PATCH, "1.4.3-dev.1"),
    ],
)
def test_next_dev_version(
    current: str, newest: str | None, level: BumpLevel, expected: str
) -> None:
    release = Version.parse(newest) if newest else None
    assert str(next_dev_version(Version.parse(current), release, level)) == expected


def test_next_dev_version_must_rise() -> None:
    with pytest.raises(PlanError, match="would not be above VERSION 0.3.0"):
        next_dev_version(
            Version.parse("0.3.0"), Version.parse("0.1.0"), BumpLevel.PATCH
        )


@given(versions, st.none() | versions.map(lambda v: v.release), levels)
def test_next_dev_version_is_always_higher(
    current: Version, newest: Version | None, level: BumpLevel
) -> None:
    try:
        candidate = next_dev_version(current, newest, level)
    except PlanError:
        return
    assert candidate > current and not candidate.is_release
    assert newest is None or candidate > newest


def test_next_release_version() -> None:
    v = Version.parse
    assert next_release_version(
        v("0.2.0-dev.2"), v("0.1.0"), BumpLevel.MAJOR, "v"
    ) == v("0.2.0")
    assert next_release_version(v("0.2.0"), v("0.2.0"), BumpLevel.MINOR, "v") == v(
        "0.3.0"
    )
    with pytest.raises(PlanError, match="tag v0.2.0"):
        next_release_version(v("0.2.0-dev.1"), v("0.2.0"), BumpLevel.PATCH, "v")


@pytest.mark.parametrize(
    ("message", "kind", "scope", "breaking", "level"),
    [
        ("feat: a", "feat", None, False, BumpLevel.MINOR),
        ("fix(api): a", "fix", "api", False, BumpLevel.PATCH),
        ("feat(api)!: a", "feat", "api", True, BumpLevel.MAJOR),
        ("refactor!: a", "refactor", None, True, BumpLevel.MAJOR),
        ("fix: a\n\nBREAKING CHANGE: gone", "fix", None, True, BumpLevel.MAJOR),
        ("fix: a\n\nBREAKING-CHANGE: gone", "fix", None, True, BumpLevel.MAJOR),
        ("Feat: a", "feat", None, False, BumpLevel.MINOR),
        ("update readme", None, None, False, BumpLevel.PATCH),
        ("Merge branch 'dev'", None, None, False, BumpLevel.PATCH),
    ],
)
def test_parse_message(
    message: str, kind: str | None, scope: str | None, breaking: bool, level: BumpLevel
) -> None:
    commit = parse_message(message)
    assert (commit.type, commit.scope, commit.breaking, commit.level) == (
        kind,
        scope,
        breaking,
        level,
    )


def test_bump_level_ignores_release_commits_and_defaults_to_patch() -> None:
    assert bump_level([]) is BumpLevel.PATCH
    tool_commit = (
        "chore(release): 2.0.0\n\nBREAKING CHANGE: not ours\n\n"
        "Release-Tool: python -m release bump"
    )
    persons = "chore(release): 2.0.0\n\nBREAKING CHANGE: a person's"
    assert bump_level([persons]) is BumpLevel.MAJOR
    assert bump_level([tool_commit, "fix: a"]) is BumpLevel.PATCH
    assert bump_level(["docs: a", "feat: b", "fix: c"]) is BumpLevel.MINOR
    assert bump_level(["feat!: a", "feat: b"]) is BumpLevel.MAJOR


def test_render_section_groups_breaking_first() -> None:
    commits = [
        parse_message("fix: b", "1" * 40),
        parse_message("feat(ui)!: a", "2" * 40),
        parse_message("odd message", ""),
    ]
    assert render_section("1.0.0", "2026-01-02", commits) == (
        "## [1.0.0] - 2026-01-02\n\n### Breaking changes\n\n- **ui:** a (2222222)\n\n"
        "### Bug fixes\n\n- b (1111111)\n\n### Other\n\n- odd message\n"
    )
    assert "No notable changes." in render_section("1.0.1", "2026-01-02", [])


def test_prepend_section_keeps_header_unreleased_and_history() -> None:
    old = "# Changelog\n\n## [Unreleased]\n\n- wip\n\n## [0.1.0] - 2026-01-01\n\n- a\n"
    new = prepend_section(old, "## [0.2.0] - 2026-01-02\n\n- b\n")
    assert new.index("[Unreleased]") < new.index("[0.2.0]") < new.index("[0.1.0]")
    assert prepend_section("", "## [0.1.0] - x\n").startswith(DEFAULT_HEADER)
    assert prepend_section("# Changelog\n", "## [0.1.0] - x\n").endswith(
        "# Changelog\n\n## [0.1.0] - x\n"
    )


def test_settings_defaults_and_roles(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings == Settings()
    assert settings.role_of("dev") is BranchRole.DEV
    assert settings.role_of("main") is BranchRole.RELEASE
    assert settings.role_of("feature/x") is BranchRole.OTHER


@pytest.mark.parametrize(
    "table",
    [
        "release-branches = 'master'",
        "changelog = ''",
        "changelog = 3",
        "release = [1",
        "[tool]\nrelease = 1",
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, table: str) -> None:
    header = "" if table.startswith("[tool]") else "[tool.release]\n"
    (tmp_path / "pyproject.toml").write_text(header + table + "\n")
    with pytest.raises(Refusal, match="pyproject.toml"):
        load_settings(tmp_path)
