"""The deploy CLI's input checks, its reading of Swarm state and its HTTP verification.

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

import pytest

from deploy.swarm import ServiceState, Task, image_matches
from deploy.verify import fetch_identity, unverified_replicas
from devstack import find_binary

ROOT = Path(__file__).resolve().parent.parent
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


@pytest.mark.parametrize(
    "args",
    [
        [],
        VALID[:-2],
        replace(VALID, "--compose", "missing.yml"),
        replace(VALID, "--url", "ftp://127.0.0.1/"),
        replace(VALID, "--version", " "),
        VALID + ["--timeout", "0"],
        VALID + ["--timeout", "soon"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("deploy: error: ")


def test_an_unreachable_engine_fails_with_exit_1() -> None:
    find_binary("docker", "docker.io")
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    result = run_cli(*VALID, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("deploy: failed: docker stack deploy")


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


class Replicas(BaseHTTPRequestHandler):
    """Answers `/` like the app behind nginx: next replica's hostname and version."""

    answers: Iterator[tuple[str, str]] = iter(())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        hostname, version = next(self.answers)
        body = json.dumps({"hostname": hostname, "version": version}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def replicas() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Replicas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_every_replica_reporting_the_version_is_verified(replicas: str) -> None:
    Replicas.answers = cycle([("r1", "2.0"), ("r2", "2.0"), ("r3", "2.0")])
    assert unverified_replicas(replicas, ["r1", "r2", "r3"], "2.0", 10) == {}


def test_a_replica_on_another_version_is_reported(replicas: str) -> None:
    Replicas.answers = cycle([("r1", "2.0"), ("r2", "1.0")])
    missing = unverified_replicas(replicas, ["r1", "r2", "r3"], "2.0", 1)
    assert missing == {"r2": "1.0", "r3": ""}


def test_no_answer_is_no_identity() -> None:
    assert fetch_identity("http://127.0.0.1:9/", timeout=1) is None
