"""Issue 21, point 3: one grammar for the parser, the history scan and the hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from release.conventional import parse_message
from release.version import BumpLevel
from tests.release.gitworld import Clone, make_origin, run_release

PATCH, MINOR, MAJOR = BumpLevel.PATCH, BumpLevel.MINOR, BumpLevel.MAJOR
# message, the level it asks for, whether the commit-msg hook accepts it.
TITLES = [
    ("feat: x", MINOR, True),
    ("feat:  x", MINOR, True),  # two spaces: GitHub squash-merge titles
    ("feat:\tx", MINOR, True),
    ("FEAT: x", MINOR, True),  # types are not case-sensitive (the spec, 1.0.0)
    ("Feat(notes): x", MINOR, True),
    ("feat(notes)!:  x", MAJOR, True),
    ("fix!: x", MAJOR, True),
    ("fix: x\n\nBREAKING CHANGE: y", MAJOR, True),
    ("fix: x\n\nBREAKING-CHANGE: y", MAJOR, True),
    ("fix: x\n\nbreaking change: y", PATCH, True),  # the footer token is uppercase
    ("docs: x", PATCH, True),
    ("feat:x", PATCH, False),
    ("feat : x", PATCH, False),
    ("feat(): x", PATCH, False),
    ("feat(a)(b): x", PATCH, False),
    ("feat: ", PATCH, False),
    ("wip!: x", MAJOR, False),  # conventional, but not a type the hook knows
]
LEVEL_VERSION = {PATCH: "0.1.1", MINOR: "0.2.0", MAJOR: "1.0.0"}


@pytest.mark.parametrize(("message", "level", "accepted"), TITLES)
def test_one_grammar(
    tmp_path: Path, message: str, level: BumpLevel, accepted: bool
) -> None:
    assert parse_message(message).level is level
    clone = make_origin(tmp_path)
    clone.commit(message)
    result = clone.release("next", "--branch", "master")
    assert (result.code, result.out) == (0, f"{LEVEL_VERSION[level]}\n"), result.err
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    hook = run_release(tmp_path, "check-commit-msg", str(path))
    assert (hook.code == 0) is accepted, hook.err


def merged_with(clone: Clone, message: str) -> None:
    """A feature branch with one `fix:` merged into master by a --no-ff merge."""
    clone.git("checkout", "-q", "-b", "feature/one")
    clone.commit("fix: the only change")
    clone.checkout("master")
    clone.git("merge", "-q", "--no-ff", "-m", message, "feature/one")


@pytest.mark.parametrize(
    "message",
    ["feat!: everything at once", "Merge feature/one\n\nBREAKING CHANGE: not really"],
)
def test_a_merge_commits_own_words_do_not_raise_the_level(
    project: Clone, message: str
) -> None:
    merged_with(project, message)
    result = project.release("next")
    assert (result.code, result.out) == (0, "0.1.1\n"), result.err
    notes = project.release("changelog").out
    assert "Breaking" not in notes and "the only change" in notes


def test_a_control_byte_in_a_body_is_not_a_new_commit(project: Clone) -> None:
    project.commit("fix: one\n\nbody\x1ffeat!: not a commit\x1e\x0cthe end")
    result = project.release("next")
    assert (result.code, result.out) == (0, "0.1.1\n"), result.err
    notes = project.release("changelog").out
    assert notes.count("\n- ") == 1 and "not a commit" not in notes.split("- ")[0]
