"""The branch x version rules as a table: plan(facts) with no git at all."""

from __future__ import annotations

import pytest

from release.facts import Facts
from release.history import CommitLog
from release.ownership import BUMP_TRAILER, OwnCommit, OwnKind
from release.plan import BelowRelease, IncompleteHistory, plan, release_notes
from release.policy import NotAbove, PlanError
from release.settings import Settings
from release.version import Version

SETTINGS = Settings()
V = Version.parse


def log(*messages: str) -> CommitLog:
    """`git log -z` text for these messages, newest first (no merges)."""
    return CommitLog(
        "".join(
            f"{index + 1:040x} {index + 2:040x}\n\x1f{message}\n\0"
            for index, message in enumerate(messages)
        )
    )


def facts(
    branch: str,
    version: str,
    tags: tuple[str, ...],
    messages: tuple[str, ...],
    **extra: object,
) -> Facts:
    """Facts for a HEAD on `branch` with VERSION `version` and these commits since."""
    known = {V(tag): f"v{tag}" for tag in tags}
    newest = max(known, default=None)
    return Facts(
        branch=branch,
        version=V(version),
        tags=known,
        commits=log(*messages),
        start=known[newest] if newest else None,
        date="2026-11-28",
        **extra,  # type: ignore[arg-type]
    )


# branch, VERSION, release tags, commits since the newest tag (newest first),
# what bump writes (None: nothing, the plan is idle).
TABLE = [
    ("dev", "0.1.0", ("0.1.0",), ("fix: a",), "0.1.1-dev.1"),
    ("dev", "0.1.1-dev.1", ("0.1.0",), ("docs: b", "fix: a"), "0.1.1-dev.2"),
    ("dev", "0.1.1-dev.2", ("0.1.0",), ("feat: c", "docs: b"), "0.2.0-dev.1"),
    ("dev", "0.2.0-dev.1", ("0.1.0",), ("feat!: d",), "1.0.0-dev.1"),
    ("dev", "0.2.0-dev.2", ("0.2.0",), ("fix: e",), "0.2.1-dev.1"),
    ("dev", "2.0.0-dev.0", ("0.2.0",), ("fix: f",), "2.0.0-dev.1"),
    ("dev", "0.1.0-dev.3", (), ("feat: g",), "0.1.0-dev.4"),
    ("dev", "1.4.2", (), ("fix: h",), "1.4.3-dev.1"),
    ("dev", "0.3.0-dev.2", ("0.2.1",), ("fix: i",), "0.3.0-dev.3"),
    ("dev", "0.1.0", ("0.1.0",), ("x\n\nBREAKING CHANGE: y",), "1.0.0-dev.1"),
    ("master", "0.2.0-dev.2", ("0.1.0",), ("Merge branch 'dev'",), "0.2.0"),
    ("master", "0.1.0", ("0.1.0",), ("fix: hotfix",), "0.1.1"),
    ("master", "0.1.0", ("0.1.0",), ("feat: hotfix",), "0.2.0"),
    ("main", "0.1.0-dev.3", (), ("feat: first",), "0.1.0"),
    ("master", "0.1.0", ("0.1.0",), (), None),
    ("dev", "0.1.0", ("0.1.0",), (), None),
    ("feature/x", "0.1.0", ("0.1.0",), ("feat: x",), None),
    ("bugfix/y", "0.1.0-dev.2", (), ("fix: y",), None),
]


@pytest.mark.parametrize(("branch", "version", "tags", "messages", "expected"), TABLE)
def test_rule_matrix(
    branch: str,
    version: str,
    tags: tuple[str, ...],
    messages: tuple[str, ...],
    expected: str | None,
) -> None:
    result = plan(facts(branch, version, tags, messages), SETTINGS)
    if expected is None:
        assert not result.changes and result.version == V(version) and result.idle
    else:
        assert result.changes and str(result.version) == expected
        assert result.previous == V(version)
        released = branch in SETTINGS.release_branches
        assert result.released is released
        assert result.tag == (f"v{expected}" if released else None)


def test_a_release_plan_carries_its_notes_dated_by_the_facts() -> None:
    result = plan(
        facts("master", "0.2.0-dev.2", ("0.1.0",), ("feat(api): tags", "fix: a")),
        SETTINGS,
    )
    assert result.notes.startswith("## [0.2.0] - 2026-11-28\n")
    assert "- **api:** tags (0000000)" in result.notes
    notes = release_notes(
        facts("dev", "0.2.0-dev.2", ("0.1.0",), ("fix: a",)), SETTINGS
    )
    assert notes.startswith("## [0.2.0] - 2026-11-28")


OWN_DEV = OwnCommit(OwnKind.BUMP, V("0.1.1-dev.1"), "it wrote VERSION 0.1.1-dev.1")
OWN_RELEASE = OwnCommit(OwnKind.BUMP, V("0.1.1"), "it wrote VERSION 0.1.1")
OWN_SYNC = OwnCommit(OwnKind.SYNC, None, "it merged v0.1.1")
OWN_TEXT = f"chore(release): 0.1.1-dev.1\n\n{BUMP_TRAILER}"


@pytest.mark.parametrize(
    ("branch", "version", "head_own", "tagged", "idle", "released"),
    [
        ("dev", "0.1.1-dev.1", OWN_DEV, False, "already a release commit", False),
        ("master", "0.1.1", OWN_RELEASE, True, "already a release commit", True),
        ("dev", "0.1.1", OWN_SYNC, False, "merge of a release", False),
        ("master", "0.1.1", None, True, "v0.1.1 already points at HEAD", True),
    ],
)
def test_already_done(
    branch: str,
    version: str,
    head_own: OwnCommit | None,
    tagged: bool,
    idle: str,
    released: bool,
) -> None:
    result = plan(
        facts(
            branch,
            version,
            ("0.1.0", "0.1.1") if tagged else ("0.1.0",),
            (OWN_TEXT, "fix: a"),
            head_own=head_own,
            head_is_tagged=tagged,
        ),
        SETTINGS,
    )
    assert idle in result.idle and result.released is released


def test_a_dev_build_fast_forwarded_onto_master_is_still_released() -> None:
    result = plan(
        facts(
            "master", "0.1.1-dev.1", ("0.1.0",), (OWN_TEXT, "fix: a"), head_own=OWN_DEV
        ),
        SETTINGS,
    )
    assert str(result.version) == "0.1.1" and result.tag == "v0.1.1"


@pytest.mark.parametrize(
    ("the_facts", "error", "words"),
    [
        (
            facts("dev", "0.1.0", ("0.1.0",), ("fix: a",), shallow=True),
            IncompleteHistory,
            "shallow",
        ),
        (
            facts(
                "dev",
                "0.1.0",
                ("0.1.0",),
                (f"chore(release): 0.2.0\n\n{BUMP_TRAILER}",),
            ),
            IncompleteHistory,
            "tag v0.2.0 is missing",
        ),
        (
            facts("dev", "0.0.9", ("0.1.0",), ("fix: a",), head_contains_newest=True),
            BelowRelease,
            "below the newest release tag v0.1.0",
        ),
        (
            facts("master", "0.1.1-dev.1", ("0.5.0",), ("fix: a",)),
            NotAbove,
            "would not be above the newest release tag v0.5.0",
        ),
        (
            facts("dev", "0.3.0", ("0.1.0",), ("fix: a",)),
            NotAbove,
            "would not be above VERSION 0.3.0",
        ),
    ],
)
def test_refusals_are_the_plans_own_errors(
    the_facts: Facts, error: type[PlanError], words: str
) -> None:
    with pytest.raises(error, match=words):
        plan(the_facts, SETTINGS)


def test_a_tag_head_does_not_contain_is_what_dev_counts_from() -> None:
    result = plan(facts("dev", "0.0.9", ("0.1.0",), ("fix: a",)), SETTINGS)
    assert str(result.version) == "0.1.1-dev.1"


def test_a_persons_release_titled_commit_is_counted() -> None:
    result = plan(
        facts(
            "dev", "0.3.1-dev.1", ("0.3.0",), ("chore(release): 0.3.1-dev.1\n\nfeat",)
        ),
        SETTINGS,
    )
    assert str(result.version) == "0.3.1-dev.2"
