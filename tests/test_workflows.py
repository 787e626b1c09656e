"""The GitHub workflows only wire commands that exist and are tested here."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess  # nosec B404 - bash runs a workflow step's own script
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nox
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict[str, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def checkout(job: dict[str, Any]) -> dict[str, Any]:
    """The job's actions/checkout step."""
    found = [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(found) == 1, found
    return found[0]


def run_script(
    script: str, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """A step's `run:` script as GitHub's runner runs it (bash -eo pipefail)."""
    return subprocess.run(  # nosec B603 B607 - the workflow's own script
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(job))


def nox_sessions() -> set[str]:
    spec = importlib.util.spec_from_file_location(
        "noxfile_under_test", ROOT / "noxfile.py"
    )
    assert spec and spec.loader
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return set(nox.registry.get())


def test_every_session_ci_names_exists_in_the_noxfile() -> None:
    ci = load("ci.yml")
    sessions = nox_sessions()
    matrix = ci["jobs"]["checks"]["strategy"]["matrix"]["session"]
    # Every session, unless CHECKS is `reduced` (the local rehearsal): one of them.
    everything = '["lint", "typecheck", "security", "workflows"]'
    reduced = """'["security"]'"""
    assert matrix == (
        f"${{{{ fromJSON(vars.CHECKS == 'reduced' && {reduced} || '{everything}') }}}}"
    )
    named = set(json.loads(everything)) | {"tests", "e2e"}
    assert "nox -s tests-$PYTHON_VERSION" in runs(ci["jobs"]["tests"]).replace('"', "")
    assert "nox -s e2e" in runs(ci["jobs"]["e2e"])
    assert named <= sessions, named - sessions
    assert {"lint", "typecheck", "security", "workflows"} <= named


def test_tests_run_against_mongodb_on_every_supported_python() -> None:
    tests = load("ci.yml")["jobs"]["tests"]
    # Unless the repository variable CHECKS is `reduced` (the local rehearsal).
    matrix = tests["strategy"]["matrix"]["python"]
    assert """vars.CHECKS == 'reduced' && '["3.11"]'""" in matrix
    assert """|| '["3.11", "3.12", "3.13"]'""" in matrix
    assert "mongo" in tests["services"]
    assert "'mongodb://127.0.0.1:27017/prework_test'" in tests["env"]["TEST_MONGO_URI"]
    assert tests["env"]["PREWORK_REQUIRE_SERVICES"] == "1"
    # Reduced, one file of tests not marked slow; otherwise pytest's own options.
    options = tests["env"]["PYTEST_ADDOPTS"]
    reduced = """'-m "not slow" --no-cov tests/test_workflows.py'"""
    assert options == f"${{{{ vars.CHECKS == 'reduced' && {reduced} || '' }}}}"


def test_only_the_reduced_checks_leave_the_e2e_and_pre_commit_out() -> None:
    jobs = load("ci.yml")["jobs"]
    assert jobs["e2e"]["if"] == "vars.CHECKS != 'reduced'"
    assert jobs["pre-commit"]["if"] == "vars.CHECKS != 'reduced'"
    assert [name for name, job in jobs.items() if "if" in job] == ["pre-commit", "e2e"]


def test_images_are_built_with_the_docker_cli_and_never_overwritten() -> None:
    image = load("image.yml")["jobs"]["image"]
    uses = [step.get("uses", "") for step in steps(image)]
    assert not [name for name in uses if name.startswith("docker/")], uses
    command = runs(image)
    assert "docker login" in command and "--password-stdin" in command
    assert "docker pull" in command and "never rebuilt" in command
    assert "manifest inspect" not in command  # "no such manifest" on any failure
    assert 'docker build "${args[@]}" .' in command
    assert 'docker push "$tag"' in command
    assert "${IMAGE_NAME:-ghcr.io/${GITHUB_REPOSITORY,,}/prework-flask-app}" in command


@pytest.mark.parametrize(
    ("name", "job"), [("dev.yml", "version"), ("release.yml", "release")]
)
def test_versioning_jobs_push_with_full_history_one_at_a_time(
    name: str, job: str
) -> None:
    workflow = load(name)
    versioning = workflow["jobs"][job]
    assert "python -m release bump --push" in runs(versioning)
    assert checkout(versioning)["with"]["fetch-depth"] == 0
    # dev.yml: the whole run; release.yml: the release job (the deploy has its own).
    serialised = workflow.get("concurrency") or versioning["concurrency"]
    prefix = {"dev.yml": "version", "release.yml": "release"}[name]
    assert serialised["group"] == prefix + "-${{ github.ref }}"
    assert serialised["cancel-in-progress"] is False
    assert versioning["needs"] == "checks"
    assert workflow["jobs"]["checks"]["uses"] == "./.github/workflows/ci.yml"


def test_dev_and_master_trigger_their_own_workflows() -> None:
    assert load("dev.yml")["on"]["push"]["branches"] == ["dev"]
    assert "master" in load("release.yml")["on"]["push"]["branches"]
    assert {"dev", "master"} <= set(load("ci.yml")["on"]["push"]["branches-ignore"])


def test_deploy_verifies_the_version_and_is_serialised() -> None:
    release = load("release.yml")
    deploy = release["jobs"]["deploy"]
    command = runs(deploy)
    assert "python -m deploy" in command
    assert '--version "$VERSION"' in command and "--url" in command
    assert deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["environment"] == "production"
    assert "StrictHostKeyChecking yes" in command
    assert release["jobs"]["image"]["with"]["latest"] is True


def test_a_pending_deploy_approval_holds_no_release() -> None:
    release = load("release.yml")
    assert "concurrency" not in release
    jobs = release["jobs"]
    assert jobs["deploy"]["concurrency"]["group"] == "deploy-production"
    assert jobs["back-merge"]["concurrency"]["group"] == "back-merge-dev"
    groups = [
        job["concurrency"]["group"] for job in jobs.values() if "concurrency" in job
    ]
    assert len(groups) == len(set(groups)) == 3


def test_a_merge_queue_gets_the_checks_once() -> None:
    on = load("ci.yml")["on"]
    assert "merge_group" in on
    assert "gh-readonly-queue/**" in on["push"]["branches-ignore"]


# Setup (checkout, setup-python, pip install) before the deploy tool starts.
DEPLOY_SETUP_SECONDS = 300


def test_the_deploy_timeout_covers_converge_verify_and_every_rollback() -> None:
    from deploy.verify import FETCH_TIMEOUT

    deploy = load("release.yml")["jobs"]["deploy"]
    command = runs(deploy)
    flags = dict(re.findall(r"(--(?:verify-)?timeout) (\d+)", command))
    converge, verify = float(flags["--timeout"]), float(flags["--verify-timeout"])
    services = set()
    for path in ROOT.glob("docker-compose*.yml"):
        services |= set((yaml.safe_load(path.read_text()) or {}).get("services", {}))
    # Each changed service's rollback is waited for in turn, up to --timeout each.
    worst = DEPLOY_SETUP_SECONDS + converge + verify + FETCH_TIMEOUT
    worst += len(services) * converge
    # Enough for the worst case, and no more than 5 minutes of room past it.
    assert worst <= deploy["timeout-minutes"] * 60 <= worst + 300, worst / 60


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_privilege_and_pinned_actions(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name}:{job_name} has no permissions"
        pushes = "git push" in runs(job) or "--push" in runs(job)
        for step in steps(job):
            uses = step.get("uses", "")
            if uses:
                assert PINNED.match(uses), f"{name}:{job_name}: {uses} is not pinned"
            if uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is pushes, job_name
            assert "github.event" not in str(step.get("run", "")), job_name


# The newest releases in ../shared/vendor/github-actions/README.md, by commit id.
NEWEST_ACTIONS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/create-github-app-token": (
        "1b10c78c7865c340bc4f6099eb2f838309f1e8c3",
        "v3.1.1",
    ),
}
VENDOR_README = ROOT.parent / "shared" / "vendor" / "github-actions" / "README.md"
RELEASE_TOKEN = (
    "${{ steps.app-token.outputs.token || secrets.RELEASE_TOKEN || github.token }}"
)
# A token per run from the App's id and key (installation tokens expire in an hour).
APP_TOKEN_STEP = {
    "name": "Mint the release App's token",
    "id": "app-token",
    "if": "vars.RELEASE_APP_CLIENT_ID != ''",
    "uses": "actions/create-github-app-token@"
    + NEWEST_ACTIONS["actions/create-github-app-token"][0],
    "with": {
        "client-id": "${{ vars.RELEASE_APP_CLIENT_ID }}",
        "private-key": "${{ secrets.RELEASE_APP_PRIVATE_KEY }}",
        "permission-contents": "write",
        "permission-workflows": "write",
    },
}


def test_actions_are_pinned_to_the_newest_vendored_releases() -> None:
    text = "\n".join(path.read_text() for path in sorted(WORKFLOWS.glob("*.yml")))
    uses = re.findall(r"uses: (actions/[\w-]+)@([0-9a-f]{40}) # (\S+)", text)
    assert uses, "no actions/* step found"
    for action, sha, tag in uses:
        assert (sha, tag) == NEWEST_ACTIONS[action], (action, sha, tag)
    if VENDOR_README.exists():  # CI clones main with shared/ beside it
        vendored = VENDOR_README.read_text()
        for sha, tag in NEWEST_ACTIONS.values():
            assert f"{tag} = " in vendored and f"({sha})" in vendored


def test_dependabot_keeps_the_pins_current_through_dev() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    assert "github-actions" in ecosystems
    assert all(update["target-branch"] == "dev" for update in config["updates"])


@pytest.mark.parametrize(
    ("name", "job", "gate"),
    [("dev.yml", "version", "changed"), ("release.yml", "release", "released")],
)
def test_images_are_built_only_for_a_version_this_run_made(
    name: str, job: str, gate: str
) -> None:
    # A dev build only for a version this run made; a release's image on every run
    # of the released commit, so that "Re-run all jobs" (changed=false) deploys.
    workflow = load(name)
    versioning = workflow["jobs"][job]
    assert versioning["outputs"][gate] == f"${{{{ steps.bump.outputs.{gate} }}}}"
    assert versioning["outputs"]["sha"] == "${{ steps.bump.outputs.sha }}"
    image = workflow["jobs"]["image"]
    assert image["needs"] == job
    assert image["if"] == f"needs.{job}.outputs.{gate} == 'true'"
    assert image["with"]["sha"] == f"${{{{ needs.{job}.outputs.sha }}}}"
    assert image["secrets"] == {
        "REGISTRY_PUSH_TOKEN": "${{ secrets.REGISTRY_PUSH_TOKEN }}"
    }


def test_a_deploy_follows_every_image_of_a_release() -> None:
    jobs = load("release.yml")["jobs"]
    assert jobs["deploy"]["needs"] == ["release", "image"]
    assert "if" not in jobs["deploy"]


def test_the_version_tag_is_pushed_last_and_a_re_run_keeps_its_image() -> None:
    image = load("image.yml")["jobs"]["image"]
    named = {step.get("id"): step for step in steps(image)}
    tags = named["name"]["run"]
    assert '$image:sha-$SHA$([ "$LATEST" = "true" ] && echo " $image:latest")' in tags
    assert tags.index("$image:sha-$SHA") < tags.index(' $image:$VERSION"')
    published = named["published"]
    assert published["env"]["SHA"] == "${{ inputs.sha }}"
    check = published["run"]
    assert '"org.opencontainers.image.revision"' in check
    assert '[ "$revision" != "$SHA" ]' in check and "never rebuilt" in check
    assert 'echo "digest=${digest#*@}" >> "$GITHUB_OUTPUT"' in check
    assert named["build"]["if"] == "steps.published.outputs.digest == ''"
    digest = "${{ steps.published.outputs.digest || steps.build.outputs.digest }}"
    assert image["outputs"]["digest"] == digest
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'org.opencontainers.image.revision="${GIT_SHA}"' in dockerfile


def test_another_registry_gets_its_own_push_credential() -> None:
    workflow = load("image.yml")
    declared = workflow["on"]["workflow_call"]["secrets"]["REGISTRY_PUSH_TOKEN"]
    assert declared["required"] is False
    image = workflow["jobs"]["image"]
    login = next(s for s in steps(image) if "docker login" in str(s.get("run")))
    assert login["env"]["REGISTRY_USER"] == (
        "${{ vars.REGISTRY_PUSH_USERNAME || github.actor }}"
    )
    assert login["env"]["REGISTRY_PASSWORD"] == (
        "${{ secrets.REGISTRY_PUSH_TOKEN || github.token }}"
    )


@pytest.mark.parametrize("name", ["dev.yml", "release.yml"])
def test_a_guard_stops_runs_on_the_tools_own_commits(name: str) -> None:
    jobs = load(name)["jobs"]
    guard = jobs["guard"]
    assert "python -m release own-commit" in runs(guard)
    assert guard["outputs"]["own"] == "${{ steps.own.outputs.own }}"
    assert steps(guard)[0]["with"]["fetch-depth"] == 0
    assert jobs["checks"]["needs"] == "guard"
    assert jobs["checks"]["if"] == "needs.guard.outputs.own != 'true'"


def test_pushing_jobs_use_the_release_token_when_there_is_one() -> None:
    for name, workflow in all_workflows().items():
        for job_name, job in workflow["jobs"].items():
            if "--push" in runs(job):
                # The App's token is minted before the checkout that pushes with it.
                mint, clone = steps(job)[0], steps(job)[1]
                assert mint == APP_TOKEN_STEP, (name, job_name)
                assert clone["with"]["token"] == RELEASE_TOKEN, (name, job_name)
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    assert "[skip ci]" not in text


def test_back_merge_is_the_release_tools_sync_of_dev() -> None:
    release = load("release.yml")
    back_merge = release["jobs"]["back-merge"]
    assert back_merge["needs"] == "release"
    assert back_merge["if"] == "needs.release.outputs.released == 'true'"
    clone = checkout(back_merge)
    assert clone["with"]["ref"] == "dev" and clone["with"]["fetch-depth"] == 0
    command = runs(back_merge)
    assert "python -m release sync --push" in command
    # actions/checkout points origin/<this branch> at the run's event commit.
    assert "origin/" not in command and "git merge" not in command
    assert back_merge["outputs"]["synced"] == "${{ steps.sync.outputs.synced }}"
