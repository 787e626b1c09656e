"""`python -m deploy`'s whole sequence without Docker: lock, stack deploy, convergence,
readiness through HTTP, rollback, history, signals, the rollback and lock verbs.

The swarm is tests/deploy_standin.py behind deploy.swarm's one runner; readiness is
asked of a real HTTP server that answers for the stand-in's replicas. The same
sequence against real engines runs in `nox -s e2e`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path

import pytest

from deploy import cli, lock, swarm
from tests.deploy_standin import StandInSwarm

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = {"web:1": "1.0.0", "web:2": "2.0.0", "web:broken": "3.0.0"}


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> StandInSwarm:
    fake = StandInSwarm()
    monkeypatch.setattr(swarm, "runner", fake)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("DEPLOY_COMPOSE_FILES", raising=False)
    # As a person runs it, also inside a workflow's tests (the rehearsal's).
    for variable in ("GITHUB_ACTOR", "GITHUB_RUN_ID"):
        monkeypatch.delenv(variable, raising=False)
    return fake


@pytest.fixture
def url(standin: StandInSwarm) -> Iterator[str]:
    """/readyz for the stand-in's web replicas in turn, at their image's version."""
    turn = count()

    class Readyz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            hosts = standin.hosts(f"{standin.stack}_web")
            body = {
                "status": "ready",
                "hostname": hosts[next(turn) % len(hosts)],
                "version": VERSIONS.get(standin.image(), "?"),
            }
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def deploy(url: str, image: str, *extra: str) -> int:
    version = VERSIONS.get(image, "9.9.9")
    common = ["--stack", "s", "--url", url, "--timeout", "5", "--verify-timeout", "2"]
    return cli.main([*common, "--image", image, "--version", version, *extra])


def outcomes(standin: StandInSwarm) -> list[tuple[str, str]]:
    found = [
        standin.config_data(name)
        for name in sorted(standin.configs)
        if name.startswith("s_deploy_") and name != "s_deploy_lock"
    ]
    return [(record["version"], record["outcome"]) for record in found]


def test_a_deploy_is_verified_recorded_and_leaves_the_lock_free(
    standin: StandInSwarm, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy(url, "web:1", "--actor", "ada", "--message", "first") == 0
    assert deploy(url, "web:2") == 0
    assert standin.image() == "web:2"
    assert outcomes(standin) == [("1.0.0", "verified"), ("2.0.0", "verified")]
    assert "s_deploy_lock" not in standin.configs
    assert "2 replicas ready at 2.0.0" in capsys.readouterr().out
    first = standin.config_data(min(standin.configs))
    assert (first["actor"], first["message"], first["image"]) == (
        "ada",
        "first",
        "web:1",
    )


@pytest.mark.parametrize(
    ("image", "stack_error", "said", "outcome"),
    [
        ("web:broken", None, "Swarm rolled s_web's update back", "rolled back"),
        # Its replicas answer the old version: never verified, rolled back by us.
        ("web:unknown", None, "replicas not ready at 9.9.9", "rolled back"),
        ("web:2", "network s_net not found", "network s_net not found", "unchanged"),
    ],
)
def test_a_failed_deploy_rolls_back_what_it_changed_and_says_so(
    standin: StandInSwarm,
    url: str,
    capsys: pytest.CaptureFixture[str],
    image: str,
    stack_error: str | None,
    said: str,
    outcome: str,
) -> None:
    assert deploy(url, "web:1") == 0
    standin.broken = {"web:broken"}
    standin.stack_deploy_error = stack_error
    assert deploy(url, image) == 1
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1
    assert standin.image() == "web:1"
    assert outcomes(standin)[-1][1] == outcome
    assert "s_deploy_lock" not in standin.configs


def test_a_held_lock_refuses_at_once_naming_its_holder_and_changes_nothing(
    standin: StandInSwarm, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = lock.Holder("grace@laptop", "1.5.0", "hotfix", lock.utc_now())
    lock.acquire("s", holder, 0)
    assert deploy(url, "web:1") == 1
    err = capsys.readouterr().err
    assert "held by grace@laptop deploying 1.5.0 since" in err and "hotfix" in err
    assert "python -m deploy lock release --stack s" in err
    assert not any(call[:2] == ["stack", "deploy"] for call in standin.calls)
    assert lock.current_holder("s") == holder  # never broken silently


def test_lock_wait_deploys_once_the_holder_lets_go(
    standin: StandInSwarm, url: str
) -> None:
    lock.acquire("s", lock.Holder("ci", "1.0.0", "", lock.utc_now()), 0)
    tries = count()

    def release_on_second_try(argv: list[str]) -> None:
        if argv[:2] == ["config", "create"] and next(tries) == 1:
            del standin.configs["s_deploy_lock"]

    standin.before_call = release_on_second_try
    lock.POLL_INTERVAL, before = 0.01, lock.POLL_INTERVAL
    try:
        assert deploy(url, "web:1", "--lock-wait", "5") == 0
    finally:
        lock.POLL_INTERVAL = before
    assert outcomes(standin) == [("1.0.0", "verified")]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_update_rolls_back_and_frees_the_lock(
    standin: StandInSwarm,
    url: str,
    capsys: pytest.CaptureFixture[str],
    signum: signal.Signals,
) -> None:
    assert deploy(url, "web:1") == 0

    def cancel_once_updating(argv: list[str]) -> None:
        if argv[:2] == ["service", "ps"] and standin.image() == "web:2":
            standin.before_call = lambda argv: None
            os.kill(os.getpid(), signum)  # as the runner cancels the job

    standin.before_call = cancel_once_updating
    handler = signal.getsignal(signum)
    assert deploy(url, "web:2") == 1
    err = capsys.readouterr().err
    assert f"cancelled by {signum.name}; rolled back: s_web" in err
    assert standin.image() == "web:1"
    assert outcomes(standin)[-1] == ("2.0.0", "rolled back")
    assert "s_deploy_lock" not in standin.configs
    assert signal.getsignal(signum) == handler  # restored after the deploy


def test_rollback_returns_to_the_previous_verified_version_or_a_named_one(
    standin: StandInSwarm, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--stack", "s", "--url", url, "--timeout", "5", "--verify-timeout", "2"]
    for image in ("web:1", "web:2", "web:broken"):
        standin.broken = {"web:broken"}
        deploy(url, image)
    assert cli.main(["rollback", *common]) == 0
    assert standin.image() == "web:1"
    assert cli.main(["rollback", "2.0.0", *common]) == 0
    assert standin.image() == "web:2"
    assert cli.main(["rollback", "7.0.0", *common]) == 1
    assert "no verified deploy of 7.0.0 in the history" in capsys.readouterr().err
    assert cli.main(["history", "--stack", "s", "--last", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines] == [
        ["2.0.0", "verified"],
        ["1.0.0", "verified"],
    ]
    assert "rollback to 2.0.0" in lines[0]


def test_rollback_with_no_history_fails_in_one_line(
    standin: StandInSwarm, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["rollback", "--stack", "s", "--url", url]) == 1
    assert capsys.readouterr().err == (
        "deploy: failed: the history holds no verified deploy\n"
    )


def test_lock_status_and_release_name_the_holder(
    standin: StandInSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lock", "status", "--stack", "s"]) == 0
    assert capsys.readouterr().out == "the deploy lock of s is free\n"
    lock.acquire("s", lock.Holder("ci", "1.0.0", "run 7", lock.utc_now()), 0)
    assert cli.main(["lock", "status", "--stack", "s"]) == 0
    assert "is held by ci deploying 1.0.0" in capsys.readouterr().out
    assert cli.main(["lock", "release", "--stack", "s"]) == 0
    assert "released, it was held by ci" in capsys.readouterr().out
    assert lock.current_holder("s") is None


def test_an_engine_failure_while_locking_is_not_taken_for_a_held_lock(
    standin: StandInSwarm, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(argv: list[str]) -> None:
        if argv[:2] == ["config", "create"]:
            raise LookupError("This node is not a swarm manager.")

    standin.before_call = refuse
    assert deploy(url, "web:1") == 1
    assert capsys.readouterr().err == (
        "deploy: failed: docker config create: "
        "Error: This node is not a swarm manager.\n"
    )
    assert not any(call[:2] == ["stack", "deploy"] for call in standin.calls)


def test_in_a_workflow_the_actor_and_the_run_are_recorded(
    standin: StandInSwarm, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    deploy(url, "web:1")
    deploy(url, "web:2")
    common = ["--stack", "s", "--url", url, "--timeout", "5", "--verify-timeout", "2"]
    assert cli.main(["rollback", *common]) == 0
    newest = standin.config_data(max(standin.configs))
    run = "https://github.com/o/r/actions/runs/42"
    assert newest["actor"] == "octocat (GitHub Actions)"
    assert newest["message"] == f"rollback to 1.0.0 ({run})"
