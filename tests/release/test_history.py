"""The regex scan of a whole `git log` agrees with reading commits one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from release.conventional import bump_level
from release.history import CommitLog
from release.ownership import BUMP_TRAILER, bump_message, titled_version
from release.version import BumpLevel, Version

TYPES = st.sampled_from(
    ["feat", "fix", "Feat", "FEAT", "docs", "chore", "x-y", "chore(release)", "9bad"]
)
SCOPES = st.sampled_from(["", "(api)", "(release)", "()", "(a b)"])
BODY_LINES = st.sampled_from(
    [
        "plain words",
        "BREAKING CHANGE: routes moved",
        "BREAKING-CHANGE: gone",
        "not BREAKING CHANGE: inline",
        "BREAKING CHANGE:",
        "feat!: in the body does not count",
    ]
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        version = draw(st.sampled_from(["0.2.0", "0.2.0-dev.3", "junk"]))
        subject = f"chore(release): {version}"
        if draw(st.booleans()):  # the tool's own commit, trailer and all
            return f"{subject}\n\n{BUMP_TRAILER}"
    else:
        subject = (
            draw(st.sampled_from(["", " "]))
            + draw(TYPES)
            + draw(SCOPES)
            + draw(st.sampled_from(["", "!"]))
            + draw(st.sampled_from([": ", ":", ":  "]))
            + draw(st.sampled_from(["change", "", "x y"]))
        )
    body = draw(st.lists(BODY_LINES, max_size=3))
    return "\n\n".join([subject.rstrip() or "empty", *body])


def log_text(commits: list[str]) -> str:
    """What `git log -z` prints in LOG_FORMAT for these messages, newest first."""
    records = [
        f"{index:040x} {index + 1:040x}\n\x1f{message}\n\0"
        for index, message in enumerate(commits)
    ]
    return "".join(records)


@given(st.lists(messages(), max_size=8))
def test_scan_level_equals_per_commit_level(commits: list[str]) -> None:
    assert CommitLog(log_text(commits)).bump_level() == bump_level(commits)


@given(st.lists(messages(), min_size=1, max_size=5))
def test_records_give_back_every_message(commits: list[str]) -> None:
    log = CommitLog(log_text(commits))
    assert [record.message for record in log.records()] == [
        message.strip() for message in commits
    ]
    head = log.head()
    assert head is not None and head.sha == f"{0:040x}"


def test_release_commits_and_merges_are_recognised() -> None:
    own = bump_message(Version(0, 3, 0)).strip()
    own_dev = bump_message(Version(0, 3, 0, 1)).strip()
    text = (
        f"{'a' * 40} {'b' * 40} {'c' * 40}\n\x1fMerge branch 'dev'\n\0"
        f"{'b' * 40} {'d' * 40}\n\x1f{own}\n\0"
        f"{'d' * 40} {'e' * 40}\n\x1f{own_dev}\n\0"
        f"{'e' * 40} {'f' * 40}\n\x1fchore(release): 0.4.0\n\0"
        f"{'f' * 40}\n\x1fchore(release): junk\n\n{BUMP_TRAILER}\n\0"
    )
    log = CommitLog(text)
    # A title alone is a person's commit: 0.4.0 is not a release the tool made.
    assert log.released_versions() == [("b" * 40, Version(0, 3, 0))]
    assert [record.is_merge for record in log.records()] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert log.bump_level() is BumpLevel.PATCH
    assert not CommitLog("") and CommitLog("").head() is None
    assert titled_version("fix: no") is None
    assert titled_version("chore(release): 1.0.0-dev.2") == Version(1, 0, 0, 2)


def test_a_persons_release_titled_feature_counts() -> None:
    text = (
        f"{'a' * 40} {'b' * 40}\n\x1fchore(release): 0.3.1-dev.1\n\n"
        "BREAKING CHANGE: a person wrote this\n\0"
    )
    assert CommitLog(text).bump_level() is BumpLevel.MAJOR
