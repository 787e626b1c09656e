"""Every release test gets its own git configuration and no GitHub Actions variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.gitworld import Clone, isolated_git_environment, make_origin


@pytest.fixture(autouse=True)
def git_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Isolate git from the machine's config and the tests from a CI's variables."""
    home = tmp_path_factory.mktemp("home")
    for name, value in isolated_git_environment(home).items():
        monkeypatch.setenv(name, value)
    ci = ("GITHUB_ACTIONS", "GITHUB_SHA", "GITHUB_REF_NAME", "GITHUB_OUTPUT")
    for name in (*ci, "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Clone:
    """A clone on master at VERSION 0.1.0, tagged v0.1.0 and pushed to origin."""
    return make_origin(tmp_path)


@pytest.fixture
def dev(project: Clone) -> Clone:
    """The same clone on a `dev` branch cut from master and pushed."""
    project.git("checkout", "-q", "-b", "dev")
    project.git("push", "-q", "-u", "origin", "dev")
    return project
