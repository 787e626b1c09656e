"""The deploy CLI's input checks, its reading of Swarm state, what it rolls back, its
placement checks and its readiness verification through HTTP.

Convergence, verification and rollback against a real swarm run in `nox -s e2e`.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - runs the CLI as users do
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest

from deploy.cli import parse
from deploy.sequence import deploy_environment
from deploy.placement import label_constraints, placement_problems
from deploy.rollback import changed_services, swarm_rolls_back
from deploy.swarm import Node, ServiceState, Snapshot, Task, image_matches
from deploy.verify import Answer, fetch_readiness, readyz_url, unverified_replicas
from devstack import find_binary

ROOT = Path(__file__).resolve().parent.parent
DIGEST = "sha256:" + "ab" * 32
VALID = [
    "--stack", "prework_stack", "--compose", "docker-compose.yml",
    "--image", "prework-flask-app:1", "--version", "1.0.0",
    "--url", "http://127.0.0.1:9/",
]  # fmt: skip


def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603 - fixed argv
        [sys.executable, "-m", "deploy", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def replace(args: list[str], flag: str, value: str) -> list[str]:
    changed = list(args)
    changed[changed.index(flag) + 1] = value
    return changed


def without(args: list[str], flag: str) -> list[str]:
    at = args.index(flag)
    return args[:at] + args[at + 2 :]


@pytest.mark.parametrize(
    "args",
    [
        [],
        VALID[:-2],
        replace(VALID, "--compose", "missing.yml"),
        replace(VALID, "--url", "ftp://127.0.0.1/"),
        replace(VALID, "--version", " "),
        replace(VALID, "--image", "img:1@sha256:abc"),
        replace(VALID, "--image", "img 1"),
        VALID + ["--timeout", "0"],
        VALID + ["--timeout", "soon"],
        VALID + ["--verify-timeout", "4000"],
        VALID + ["--lock-wait", "-0.5"],
        ["rollback", "--stack", "s", "--url", "http://h/", "--timeout", "0"],
        ["history", "--stack", "s", "--last", "0"],
        ["lock", "break", "--stack", "s"],
        ["lock", "status", "--stack", " "],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("deploy: error: ")


def test_compose_files_come_from_the_environment_when_not_given() -> None:
    env = dict(os.environ, DEPLOY_COMPOSE_FILES="docker-compose.yml missing.yml")
    result = run_cli(*without(VALID, "--compose"), env=env)
    assert result.returncode == 2
    assert result.stderr == "deploy: error: --compose missing.yml: no such file\n"


def test_compose_files_keep_their_order_and_default_to_the_base_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("DEPLOY_COMPOSE_FILES", raising=False)
    args = without(VALID, "--compose")
    assert parse(args).compose == ["docker-compose.yml"]
    overlays = ["-c", "docker-compose.yml", "-c", "docker-compose.mongo-tls.yml"]
    assert parse(args + overlays).compose == overlays[1::2]
    monkeypatch.setenv(
        "DEPLOY_COMPOSE_FILES", "docker-compose.yml docker-compose.mongo.yml"
    )
    assert parse(args).compose == ["docker-compose.yml", "docker-compose.mongo.yml"]


def test_an_image_by_digest_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    image = f"ghcr.io/o/r/prework-flask-app:1.0.0@{DIGEST}"
    assert parse(replace(VALID, "--image", image)).image == image


def test_an_unreachable_engine_fails_with_exit_1() -> None:
    find_binary("docker", "docker.io")
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    result = run_cli(*VALID, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("deploy: failed: docker ")
    assert "prework-flask-app:1, no registry digest (deployed by tag)" in result.stdout


def task(image: str, state: str = "running", hostname: str = "aaaaaaaaaaaa") -> Task:
    return Task(image, state, "running", hostname + "0" * 52)


def test_a_service_converges_when_every_replica_runs_the_spec_image() -> None:
    tasks = tuple(task("img:b", hostname=f"{n:012d}") for n in range(3))
    state = ServiceState("img:b", 3, "completed", "t0", "", tasks)
    assert state.converged()
    assert [t.hostname for t in state.running_tasks()] == [
        "000000000000",
        "000000000001",
        "000000000002",
    ]


@pytest.mark.parametrize(
    "state",
    [
        ServiceState("img:b", 3, "updating", "t0", "", (task("img:b"),) * 3),
        ServiceState("img:b", 3, "completed", "t0", "", (task("img:a"),) * 3),
        ServiceState("img:b", 3, None, None, "", (task("img:b"),) * 2),
        ServiceState("img:b", 3, None, None, "", (task("img:b", "starting"),) * 3),
        ServiceState("img:b", 3, "paused", "t0", "", (task("img:b"),) * 3),
    ],
)
def test_a_service_has_not_converged(state: ServiceState) -> None:
    assert not state.converged()


def test_an_image_matches_itself_with_or_without_a_digest() -> None:
    assert image_matches("img:b", "img:b")
    assert image_matches("img:b@sha256:" + "0" * 64, "img:b")
    assert not image_matches("img:bb", "img:b")


def snapshot(image: str, started: str | None = "t0") -> Snapshot:
    return Snapshot({"TaskTemplate": {"ContainerSpec": {"Image": image}}}, started)


def test_only_services_whose_spec_changed_are_changed() -> None:
    before = {"s_web": snapshot("web:1"), "s_redis": snapshot("redis:7")}
    after = {
        "s_web": snapshot("web:2", "t1"),
        "s_redis": snapshot("redis:7", "t1"),
        "s_new": snapshot("new:1"),
    }
    assert changed_services(before, after) == ["s_web"]
    assert changed_services(before, before) == []
    assert changed_services({}, after) == []


@pytest.mark.parametrize(
    ("update_state", "started", "swarm_does_it"),
    [
        ("rollback_started", "t1", True),
        ("rollback_completed", "t1", True),
        # Left from an earlier deploy: the deploy must roll back itself.
        ("rollback_completed", "t0", False),
        ("updating", "t1", False),
        (None, None, False),
    ],
)
def test_swarm_own_rollback_counts_only_when_it_started_in_this_deploy(
    update_state: str | None, started: str | None, swarm_does_it: bool
) -> None:
    state = ServiceState("web:1", 3, update_state, started, "", ())
    assert swarm_rolls_back(state, snapshot("web:1", "t0")) is swarm_does_it


def placed(*constraints: str) -> dict[str, Any]:
    return {"TaskTemplate": {"Placement": {"Constraints": list(constraints)}}}


def test_label_constraints_are_read_from_the_specs() -> None:
    specs = [
        placed("node.labels.prework.redis == true", "node.role==manager"),
        placed("node.labels.prework.nginx==true"),
        {"TaskTemplate": {}},
    ]
    assert label_constraints(specs) == {
        "prework.redis": "true",
        "prework.nginx": "true",
    }


def test_a_label_no_node_carries_is_an_error_and_several_a_warning() -> None:
    nodes = [
        Node("1", "a", {"prework.redis": "true", "prework.nginx": "true"}),
        Node("2", "b", {"prework.nginx": "true"}),
        Node("3", "c", {}),
    ]
    errors, warnings = placement_problems(
        {"prework.redis": "true", "prework.nginx": "true", "prework.mongo": "true"},
        nodes,
    )
    assert errors == [
        "no node carries prework.mongo=true: "
        "docker node update --label-add prework.mongo=true NODE"
    ]
    assert len(warnings) == 1 and warnings[0].startswith(
        "2 nodes carry prework.nginx=true (a (1), b (2))"
    )


def test_the_stack_files_constraints_name_the_labels_deploy_sets() -> None:
    yaml = pytest.importorskip("yaml")
    from deploy.placement import STACK_LABELS

    found = {}
    for name in (
        "docker-compose.yml",
        "docker-compose.mongo.yml",
        "docker-compose.monitoring.yml",
    ):
        for service in yaml.safe_load((ROOT / name).read_text())["services"].values():
            # An overlay's entry may only add to a base service (no deploy key).
            deploy = service.get("deploy", {})
            spec = placed(*deploy.get("placement", {}).get("constraints", []))
            found.update(label_constraints([spec]))
    assert found == STACK_LABELS


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8/", "http://h:8/readyz"),
        ("https://notes.example.com", "https://notes.example.com/readyz"),
        ("https://example.com/prework/", "https://example.com/prework/readyz"),
    ],
)
def test_readiness_is_asked_under_the_base_url(url: str, expected: str) -> None:
    assert readyz_url(url) == expected


class Replicas(BaseHTTPRequestHandler):
    """Answers `/readyz` like the app behind nginx: next replica's readiness."""

    answers: Iterator[tuple[int, str, str]] = iter(())
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status, hostname, version = next(self.answers)
        self.paths.append(self.path)
        ready = "ready" if status == 200 else "unready"
        body = json.dumps({"status": ready, "hostname": hostname, "version": version})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def replicas() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Replicas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Replicas.paths = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_every_replica_ready_at_the_version_is_verified(replicas: str) -> None:
    Replicas.answers = cycle(
        [(200, "r1", "2.0"), (200, "r2", "2.0"), (200, "r3", "2.0")]
    )
    assert unverified_replicas(replicas, ["r1", "r2", "r3"], "2.0", 10) == {}
    assert set(Replicas.paths) == {"/readyz"}


def test_unready_and_old_replicas_are_reported(replicas: str) -> None:
    Replicas.answers = cycle(
        [(200, "r1", "2.0"), (503, "r2", "2.0"), (200, "r3", "1.0")]
    )
    missing = unverified_replicas(replicas, ["r1", "r2", "r3", "r4"], "2.0", 1)
    assert missing == {"r2": "2.0 HTTP 503", "r3": "1.0 ready", "r4": "unseen"}


def test_a_503_still_names_its_replica(replicas: str) -> None:
    Replicas.answers = cycle([(503, "r2", "2.0")])
    assert fetch_readiness(readyz_url(replicas)) == Answer(503, "r2", "2.0")


def test_no_answer_is_no_identity() -> None:
    assert fetch_readiness("http://127.0.0.1:9/readyz", timeout=1) is None


def deploy_job() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    job: dict[str, Any] = workflow["jobs"]["deploy"]
    return job


def test_the_deploy_job_is_a_thin_call_fed_by_the_production_environment() -> None:
    job = deploy_job()
    assert job["environment"] == "production"
    # timeout-minutes: tests/test_workflows.py sizes it from the worst case.
    step = job["steps"][-1]
    assert step["run"].startswith("python -m deploy ")
    assert '--image "$IMAGE:$VERSION@$DIGEST"' in step["run"]
    assert "--compose" not in step["run"] and " -c " not in step["run"]
    env = step["env"]
    assert env["DEPLOY_COMPOSE_FILES"] == "${{ vars.DEPLOY_COMPOSE_FILES }}"
    assert env["DIGEST"] == "${{ needs.image.outputs.digest }}"
    for variable in ("WEB_REPLICAS", "PREWORK_HTTP_PORT", "MONGO_URI_SECRET"):
        assert env[variable] == "${{ vars.%s }}" % variable


def test_the_deploy_job_pulls_with_a_long_lived_credential_over_a_kept_alive_ssh() -> (
    None
):
    job = deploy_job()
    login = next(s for s in job["steps"] if "docker login" in s.get("run", ""))
    assert login["env"]["REGISTRY_PASSWORD"] == "${{ secrets.REGISTRY_READ_TOKEN }}"
    assert "--password-stdin" in login["run"]
    assert "packages" not in job["permissions"]
    ssh = next(s for s in job["steps"] if "known_hosts" in s.get("run", ""))
    assert (
        "ServerAliveInterval" in ssh["run"]
        and "StrictHostKeyChecking yes" in ssh["run"]
    )


def test_an_image_by_digest_is_said_with_tag_and_digest() -> None:
    from deploy.sequence import describe_image

    said = describe_image(f"ghcr.io/o/r/app:1.2.3@{DIGEST}")
    assert said == f"image ghcr.io/o/r/app:1.2.3, digest {DIGEST}"


def test_a_failure_that_changed_nothing_rolls_nothing_back() -> None:
    from deploy.sequence import undo

    failure = undo("replicas not ready", [], {"s_web": snapshot("web:1")}, 1)
    assert failure.outcome == "unchanged"
    assert str(failure) == (
        "replicas not ready; this deploy changed no existing service: none rolled back"
    )


def test_nginx_and_the_edge_configs_are_named_by_digests_of_their_own(
    tmp_path: Path,
) -> None:
    """A changed nginx template renames nginx's configs only: the edge stays put."""
    for name in ("templates/default.conf.template", "templates/edge.conf.template"):
        (tmp_path / "nginx" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "nginx" / name).write_text(name)
    (tmp_path / "nginx" / "upstream-watch.sh").write_text("#!/bin/sh\n")
    compose = tmp_path / "docker-compose.yml"
    before = deploy_environment(compose, "web:1")
    (tmp_path / "nginx/templates/default.conf.template").write_text("changed")
    after = deploy_environment(compose, "web:1")
    assert after["NGINX_TEMPLATE_DIGEST"] != before["NGINX_TEMPLATE_DIGEST"]
    assert after["EDGE_TEMPLATE_DIGEST"] == before["EDGE_TEMPLATE_DIGEST"]
    (tmp_path / "nginx/upstream-watch.sh").write_text("#!/bin/sh\n# changed\n")
    watcher = deploy_environment(compose, "web:1")
    assert watcher["EDGE_TEMPLATE_DIGEST"] != after["EDGE_TEMPLATE_DIGEST"]
