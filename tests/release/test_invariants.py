"""Random sequences of dev pushes, releases, back-merges and hotfixes keep the rules."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from release.version import Version
from tests.release.gitworld import Clone, make_origin

MESSAGES = st.sampled_from(
    [
        "fix: a bug",
        "feat: a feature",
        "feat(api)!: a breaking feature",
        "docs: words",
        "chore: tidy",
        "refactor: shuffle\n\nBREAKING CHANGE: moved",
        "something not conventional",
    ]
)


def merge_keeping_the_higher_version(clone: Clone, branch: str, no_ff: bool) -> None:
    """Merge `branch`; a VERSION conflict is resolved as a person would: the higher."""
    args = ["merge", "-q", "--no-edit", *(["--no-ff"] if no_ff else []), branch]
    try:
        clone.git(*args)
    except AssertionError:
        ours = Version.parse(clone.git("show", ":2:VERSION").strip())
        theirs = Version.parse(clone.git("show", ":3:VERSION").strip())
        (clone.path / "VERSION").write_text(f"{max(ours, theirs)}\n")
        clone.git("add", "VERSION")
        clone.git("commit", "-q", "--no-edit", "--no-verify")


class BranchFlow(RuleBasedStateMachine):
    """One repository driven through the branch model of VERSIONING.md."""

    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="release-flow-"))
        self.clone = make_origin(self.base)
        self.clone.git("checkout", "-q", "-b", "dev")
        self.produced: dict[str, list[Version]] = {"dev": [], "master": []}
        self.hotfixes = 0

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def bump(self, branch: str) -> None:
        self.clone.checkout(branch)
        before = self.clone.version
        result = self.clone.release("bump")
        assert result.code == 0, result.err
        version = Version.parse(result.out.strip())
        if before != self.clone.version:
            earlier = self.produced[branch]
            assert all(version > old for old in earlier), (version, earlier)
            assert all(
                version not in produced for produced in self.produced.values()
            ), version
            earlier.append(version)
        again = self.clone.release("bump")
        assert (again.code, again.out) == (0, result.out), "a re-run bumped again"

    @rule(message=MESSAGES)
    def push_to_dev(self, message: str) -> None:
        self.clone.checkout("dev")
        self.clone.commit(message)
        self.bump("dev")

    @rule(messages=st.lists(MESSAGES, min_size=1, max_size=3))
    def merge_feature_branch(self, messages: list[str]) -> None:
        self.clone.checkout("dev")
        self.clone.git("checkout", "-q", "-B", "feature/work")
        for message in messages:
            self.clone.commit(message)
        self.clone.checkout("dev")
        self.clone.git("merge", "-q", "--no-ff", "--no-edit", "feature/work")
        self.bump("dev")

    @rule(no_ff=st.booleans())
    def release(self, no_ff: bool) -> None:
        self.clone.checkout("master")
        merge_keeping_the_higher_version(self.clone, "dev", no_ff)
        self.bump("master")

    @rule()
    def merge_master_back_into_dev(self) -> None:
        self.clone.checkout("dev")
        merge_keeping_the_higher_version(self.clone, "master", no_ff=False)
        self.bump("dev")

    @rule()
    def sync_the_release_into_dev(self) -> None:
        self.clone.checkout("dev")
        before = self.clone.version.strip()
        result = self.clone.release("sync")
        assert result.code == 0, result.err
        newest = max(Version.parse(tag[1:]) for tag in self.clone.tags())
        assert Version.parse(self.clone.version.strip()) == max(
            Version.parse(before), newest
        )
        assert self.clone.git("status", "--porcelain") == ""
        log = self.clone.changelog
        for tag in self.clone.tags()[1:]:
            assert log.count(f"## [{tag[1:]}]") == 1, (tag, log)
        self.bump("dev")

    @rule(message=MESSAGES)
    def hotfix(self, message: str) -> None:
        self.hotfixes += 1
        self.clone.checkout("master")
        self.clone.git("checkout", "-q", "-b", f"hotfix/{self.hotfixes}")
        self.clone.commit(message)
        self.clone.checkout("master")
        self.clone.git("merge", "-q", "--no-ff", "--no-edit", f"hotfix/{self.hotfixes}")
        self.bump("master")

    @invariant()
    def version_always_parses(self) -> None:
        Version.parse(self.clone.version.strip())

    @invariant()
    def releases_are_tagged_in_order(self) -> None:
        tags = [Version.parse(tag[1:]) for tag in self.clone.tags()]
        assert tags == sorted(tags)
        assert self.produced["master"] == [tag for tag in tags if tag > tags[0]]


@pytest.mark.slow
def test_branch_flow_keeps_every_invariant() -> None:
    run_state_machine_as_test(
        BranchFlow,
        settings=settings(
            max_examples=10,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
