"""The image job's and the deploy's registry steps, run by bash with the real docker CLI
against the rehearsal's registry (Debian's docker-registry, htpasswd accounts).

The steps' scripts come from image.yml and release.yml as GitHub runs them
(bash -eo pipefail, one HOME per job, GITHUB_OUTPUT read back); their env is the one
the workflow declares, with the expressions' values given here. The engine is a
dockerd of this test's own, started only when the machine's Docker lock is free: the
test skips rather than wait while an e2e or a rehearsal holds it. What it leaves out:
GitHub's own registry (ghcr.io) and its tokens; the image is a one-file image built
FROM scratch, not the project's (its build is the e2e's and the rehearsal's).
"""

from __future__ import annotations

import os
import secrets
import subprocess  # nosec B404 - bash and docker with argv built here
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.commands import docker
from devstack.dockerd import Dockerd, DockerLockHeld
from devstack.registry import RegistryServer
from tests.conftest import services_required, skip_or_fail
from tests.test_workflows import load, run_script, steps

pytestmark = pytest.mark.slow

PUSH = ("pusher", secrets.token_hex(8))
READ = ("reader", secrets.token_hex(8))
VERSION = "1.2.0"
REPOSITORY = "owner/prework"
# The Dockerfile's revision label, as the project's sets it from GIT_SHA.
DOCKERFILE = """\
FROM scratch
ARG VERSION=unknown
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.revision="${GIT_SHA}"
COPY note /note
"""


@dataclass
class Step:
    """One step's outcome: exit code, its output, and what it wrote to GITHUB_OUTPUT."""

    code: int
    output: str
    outputs: dict[str, str]


def step(workflow: str, job: str, name: str) -> dict[str, Any]:
    """The named step of a job."""
    found = [s for s in steps(load(workflow)["jobs"][job]) if s.get("name") == name]
    assert len(found) == 1, f"{workflow}: no single step {name!r} in {job}"
    return found[0]


def run_step(found: dict[str, Any], env: Mapping[str, str], home: Path) -> Step:
    """The step's script with its env (every variable it declares, and only those)."""
    assert set(found.get("env", {})) == set(env), "the step's env changed"
    output = home / "github_output"
    output.write_text("")
    environment = {
        "PATH": os.environ["PATH"],
        "DOCKER_HOST": os.environ["DOCKER_HOST"],
        "HOME": str(home),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_REPOSITORY": REPOSITORY,
        **env,
    }
    done = run_script(found["run"], home, environment)
    lines = output.read_text().splitlines()
    written = dict(line.split("=", 1) for line in lines if "=" in line)
    return Step(done.returncode, done.stdout + done.stderr, written)


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    """A dockerd of this module's own (DOCKER_HOST), or a skip when the lock is held;
    under PREWORK_REQUIRE_SERVICES=1 (CI) it waits for the lock: a skip there would
    leave the registry steps untested without a word."""
    if os.geteuid() != 0:
        skip_or_fail("a dockerd of the test's own needs root")
    dockerd = Dockerd(wait_for_lock=services_required())
    try:
        dockerd.start()
    except DockerLockHeld as held:
        pytest.skip(f"{held} (an e2e or a rehearsal runs): this test never waits")
    try:
        yield
    finally:
        dockerd.stop()


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    """The registry with the push and the read account."""
    with RegistryServer(users=dict([PUSH, READ])) as server:
        yield server


def runner_home(folder: Path) -> Path:
    """A fresh runner HOME holding the build context (a one-file Dockerfile)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "note").write_text("one file\n")
    return folder


@pytest.fixture
def job_home(tmp_path: Path) -> Path:
    return runner_home(tmp_path / "home")


def image_job(
    registry: RegistryServer,
    home: Path,
    sha: str,
    password: str = PUSH[1],
    before_push: Callable[[], object] = lambda: None,
) -> dict[str, Step]:
    """image.yml's steps in order, as one run of the job; a failed step ends it."""
    done: dict[str, Step] = {}
    name = done["name"] = run_step(
        step("image.yml", "image", "Image name and tags"),
        {
            "IMAGE_NAME": f"{registry.address}/{REPOSITORY}/prework-flask-app",
            "VERSION": VERSION,
            "SHA": sha,
            "LATEST": "true",
        },
        home,
    )
    login = done["login"] = run_step(
        step("image.yml", "image", "Log in to the registry"),
        {
            "REGISTRY": name.outputs["registry"],
            "REGISTRY_USER": PUSH[0],
            "REGISTRY_PASSWORD": password,
        },
        home,
    )
    if login.code:
        return done
    image = {"IMAGE": name.outputs["image"], "VERSION": VERSION, "SHA": sha}
    published = done["published"] = run_step(
        step("image.yml", "image", "Refuse to overwrite a published version"),
        image,
        home,
    )
    if published.code or published.outputs.get("digest"):
        return done
    before_push()
    build = step("image.yml", "image", "Build and push")
    assert build["if"] == "steps.published.outputs.digest == ''"
    done["build"] = run_step(
        build,
        {
            "TAGS": name.outputs["tags"],
            "VERSION": VERSION,
            "SHA": sha,
            "BUILD_ARGS": "",
        },
        home,
    )
    return done


def deploy_login(registry: RegistryServer, home: Path, password: str) -> Step:
    """release.yml's deploy job's login step with the read account."""
    return run_step(
        step(
            "release.yml",
            "deploy",
            "Log in to the registry (the swarm pulls with this credential)",
        ),
        {
            "IMAGE": f"{registry.address}/{REPOSITORY}/prework-flask-app",
            "REGISTRY_USER": READ[0],
            "REGISTRY_PASSWORD": password,
        },
        home,
    )


def refuse_version_tag(registry: RegistryServer) -> Path:
    """A file where the registry writes the version tag: its storage fails, and the
    tag's manifest PUT is answered with an error, as a registry failing half-way.

    Made between the job's check and its push (a read of the tag would fail too)."""
    assert registry.folder is not None
    tags = registry.folder / "data/docker/registry/v2/repositories" / REPOSITORY
    blocker = tags / "prework-flask-app/_manifests/tags" / VERSION
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a tag folder\n")
    return blocker


# --- item 1: the accounts ---------------------------------------------------------


def test_the_registry_answers_only_its_accounts(registry: RegistryServer) -> None:
    url = f"http://{registry.address}/v2/"
    anonymous = requests.get(url, timeout=5)
    wrong = requests.get(url, auth=(PUSH[0], "wrong"), timeout=5)
    right = requests.get(url, auth=PUSH, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert right.status_code == 200


@pytest.mark.docker
def test_a_wrong_push_token_fails_the_image_job(
    engine: None, registry: RegistryServer, job_home: Path
) -> None:
    done = image_job(registry, job_home, "1" * 40, password="wrong")
    assert done["login"].code != 0
    assert "401" in done["login"].output or "nauthorized" in done["login"].output
    assert "published" not in done and "build" not in done


@pytest.mark.docker
def test_a_push_without_the_login_is_refused(
    engine: None, registry: RegistryServer, job_home: Path
) -> None:
    tag = f"{registry.address}/{REPOSITORY}/anonymous:1"
    docker("build", "--tag", tag, str(job_home))
    refused = subprocess.run(  # nosec B603 B607 - fixed argv
        ["docker", "push", tag],
        env={**os.environ, "HOME": str(job_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "no basic auth credentials" in refused.stderr
    assert f"{REPOSITORY}/anonymous" not in registry.repositories()


@pytest.mark.docker
def test_the_deploy_logs_in_with_the_read_token_and_a_wrong_one_fails(
    engine: None, registry: RegistryServer, tmp_path: Path
) -> None:
    wrong = deploy_login(registry, tmp_path, "wrong")
    right = deploy_login(registry, tmp_path, READ[1])
    assert wrong.code != 0
    assert "401" in wrong.output or "nauthorized" in wrong.output
    assert right.code == 0, right.output
    config = (tmp_path / ".docker" / "config.json").read_text()
    assert registry.address in config  # what --with-registry-auth hands the swarm


# --- item 2: a re-run after a half-failed push ------------------------------------


@pytest.mark.docker
def test_a_rerun_after_a_half_failed_push_publishes_this_commits_image(
    engine: None, registry: RegistryServer, tmp_path: Path
) -> None:
    sha = secrets.token_hex(20)
    name = f"{REPOSITORY}/prework-flask-app"
    homes = [runner_home(tmp_path / f"run-{n}") for n in range(5)]

    # A registry that cannot say whether the version exists (a 5xx): no guess, no
    # build (the docker CLI's `manifest inspect` said "no such manifest" here).
    blocker = refuse_version_tag(registry)
    unsure = image_job(registry, homes[4], sha)
    blocker.unlink()
    assert unsure["published"].code != 0
    assert "cannot tell whether" in unsure["published"].output
    assert "build" not in unsure

    # The first run's last push, the version tag's, is refused by the registry.
    blocked: list[Path] = []
    first = image_job(
        registry,
        homes[0],
        sha,
        before_push=lambda: blocked.append(refuse_version_tag(registry)),
    )
    assert first["build"].code != 0, first["build"].output
    assert "500 Internal Server Error" in first["build"].output
    blocked[0].unlink()  # the registry works again
    assert registry.tags(name) == sorted(["latest", f"sha-{sha}"])
    built = registry.digest(name, f"sha-{sha}")

    # "Re-run failed jobs": the version tag is missing, so the job builds and pushes.
    again = image_job(registry, homes[1], sha)
    assert again["published"].code == 0, again["published"].output
    assert again["build"].code == 0, again["build"].output
    assert again["build"].outputs["digest"] == built
    assert registry.digest(name, VERSION) == built

    # "Re-run all jobs": the version is this commit's image; kept, its digest out.
    kept = image_job(registry, homes[2], sha)
    assert kept["published"].outputs.get("digest") == built, kept["published"].output
    assert "kept, not rebuilt" in kept["published"].output
    assert "build" not in kept

    # Another commit claiming the same version is refused; the image stays.
    other = image_job(registry, homes[3], secrets.token_hex(20))
    assert other["published"].code != 0
    assert "never rebuilt" in other["published"].output
    assert registry.digest(name, VERSION) == built
    revision = docker(
        "image",
        "inspect",
        "--format",
        '{{index .Config.Labels "org.opencontainers.image.revision"}}',
        f"{registry.address}/{name}:{VERSION}",
    )
    assert revision.strip() == sha
