"""The e2e scenario, steps 4-7 of the swarm issue, on an engine in swarm mode.

Each step asserts what it proves and adds its figures to `Figures`, printed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404 - runs `python -m deploy` as the workflow does
import sys
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from deploy.placement import STACK_LABELS
from deploy.swarm import image_matches, service_spec, service_state
from deploy.verify import unverified_replicas
from nginx.render import EDGE_ENV, read_template_env
from devstack import docker, wait_until
from devstack.harness import STACK, STORE_OVERLAY, WEB
from e2e import images
from e2e.load import LoadReport, SteadyLoad
from e2e.stack import (
    app_answers,
    container_addresses,
    get,
    get_json,
    main_process,
    published_ports,
    redis_answers,
    redis_config,
)

VERSION_A = "1.0.0-e2e.1"
VERSION_B = "1.0.0-e2e.2"
VERSION_BROKEN = "1.0.0-e2e.3"
# Below nginx's 20 r/s per client address, so no answer of the stream may be a 429.
STEADY_RATE = 8.0
# The steady client's addresses: the edge tells clients apart by the TCP peer it sees.
CLIENTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
# More clients at once than nginx queues (its burst): the rest must get 429.
FLOOD_CLIENTS_ABOVE_BURST = 20
FLOOD_REQUESTS_PER_CLIENT = 3
TIMEOUT = 240.0
# Production's files with the embedded store; production's files alone point web at
# the unreachable MongoDB of the secret.
GOOD_FILES = ("docker-compose.yml", STORE_OVERLAY)


@dataclass
class Figures:
    """What one run measured, printed at the end of the session."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record and print one figure."""
        self.lines.append(line)
        print(f"[e2e] {line}", flush=True)


def deploy_cli(
    image: str,
    version: str,
    url: str,
    files: tuple[str, ...] = GOOD_FILES,
    verify_timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`python -m deploy` as the GitHub deploy job runs it, the files in order.

    `env` adds stack variables to this process's (e.g. an image for one service);
    `extra` adds arguments (e.g. --lock-wait).
    """
    result = subprocess.run(  # nosec B603 - fixed argv
        [
            *deploy_command("deploy", url, files, verify_timeout),
            "--image",
            image,
            "--version",
            version,
            *extra,
        ],
        cwd=images.ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"[e2e] deploy said:\n{result.stdout}{result.stderr}".rstrip(), flush=True)
    return result


def deploy_command(
    verb: str, url: str, files: tuple[str, ...] = GOOD_FILES, verify: float = 60
) -> list[str]:
    """`python -m deploy VERB` on the e2e's stack, its files and URL."""
    composes = [arg for name in files for arg in ("-c", name)]
    return [
        sys.executable, "-m", "deploy", verb, "--stack", STACK, *composes,
        "--url", url, "--timeout", str(TIMEOUT), "--verify-timeout", str(verify),
    ]  # fmt: skip


def replicas_report(version: str, url: str) -> None:
    """Every running replica answers /readyz 200 at `version` through nginx."""
    hostnames = [task.hostname for task in service_state(WEB).running_tasks()]
    assert len(hostnames) == 3, f"running replicas: {hostnames}"
    missing = unverified_replicas(url, hostnames, version, 60)
    assert not missing, f"replicas not reporting {version}: {missing}"


def step_deploy(image: str, url: str, figures: Figures) -> None:
    """4. Deploy version A through the deploy CLI; it converges and verifies."""
    started = time.monotonic()
    result = deploy_cli(image, VERSION_A, url)
    assert result.returncode == 0, f"deploy failed: {result.stderr}"
    assert "no registry digest" in result.stdout, result.stdout
    assert "not for production" in result.stderr, result.stderr
    figures.add(
        f"deploy of A: {time.monotonic() - started:.1f} s; "
        + result.stdout.strip().splitlines()[-1]
    )


def step_checks(base: str, image: str, figures: Figures) -> None:
    """5. Through nginx: /, /healthz, /version, labels, closed ports, 429, notes 503."""
    redis = f"{STACK}_redis"
    wait_until(lambda: service_state(redis).converged(), 60, "Redis healthy")
    root = get_json(f"{base}/")
    assert root["version"] == VERSION_A and root["hostname"], root
    # A visit count proves web reaches Redis with the password from the secret.
    assert isinstance(root["visits"], int), f"no Redis behind web: {root}"
    assert get(f"{base}/healthz").status_code == 200
    sha = images.git_sha()
    assert get_json(f"{base}/version") == {"version": VERSION_A, "commit": sha}
    assert images.image_label(image, "org.opencontainers.image.version") == VERSION_A
    assert images.image_label(image, "org.opencontainers.image.revision") == sha
    command, user = main_process(WEB)
    assert "gunicorn" in command and "app:create_app()" in command, command
    assert user != "0", "web runs as root"
    for address in ["127.0.0.1", *container_addresses(WEB)]:
        assert not app_answers(address, VERSION_A), f"the app answers on {address}:8000"
    for address in ["127.0.0.1", *container_addresses(f"{STACK}_redis")]:
        assert not redis_answers(address), f"Redis answers on {address}:6379"
    ports = {name: spec for name, spec in published_ports().items() if spec}
    assert list(ports) == [f"{STACK}_edge"], f"published: {ports}"
    # The edge's unprivileged port (nginx/edge.env), published in host mode.
    target = int(read_template_env(EDGE_ENV)["NGINX_EDGE_LISTEN"])
    assert [(p["TargetPort"], p["PublishMode"]) for p in ports[f"{STACK}_edge"]] == [
        (target, "host")
    ]
    step_store(base)
    step_placement()
    step_rate_limit(base, figures)


def step_store(base: str) -> None:
    """The e2e's store answers: a note written through nginx reads back."""
    created = requests.post(f"{base}/api/notes", json={"title": "e2e"}, timeout=30)
    assert created.status_code == 201, f"{created.status_code} {created.text}"
    note = get_json(f"{base}/api/notes/{created.json()['id']}")
    assert note["title"] == "e2e", note


def step_placement() -> None:
    """The deploy labelled the single node; redis, the edge (the published port) and
    nginx beside it are held to it; redis evicts only TTLs."""
    labels = json.loads(docker("node", "inspect", "self"))[0]["Spec"]["Labels"]
    assert {k: labels.get(k) for k in STACK_LABELS} == STACK_LABELS, labels
    placed = {
        "redis": "prework.redis",
        "edge": "prework.nginx",
        "nginx": "prework.nginx",
    }
    for service, label in placed.items():
        spec = service_spec(f"{STACK}_{service}")
        constraints = spec["TaskTemplate"]["Placement"]["Constraints"]
        assert constraints == [f"node.labels.{label} == true"], constraints
    policy = redis_config("maxmemory-policy")
    assert policy == "volatile-lru", policy


def step_rate_limit(base: str, figures: Figures) -> None:
    """Past the burst nginx answers 429; then it serves again once the bucket drains."""
    burst = int(read_template_env()["NGINX_RATE_BURST"])
    clients = burst + FLOOD_CLIENTS_ABOVE_BURST
    count = clients * FLOOD_REQUESTS_PER_CLIENT
    with ThreadPoolExecutor(max_workers=clients) as pool:
        statuses = list(
            pool.map(lambda _: get(f"{base}/healthz").status_code, range(count))
        )
    assert 429 in statuses, f"no 429 among {count} requests: {set(statuses)}"
    assert set(statuses) <= {200, 429}, f"flood answers: {sorted(set(statuses))}"
    figures.add(f"rate limit: {statuses.count(429)} of {count} flood requests got 429")
    wait_until(
        lambda: get(f"{base}/healthz").status_code == 200, 30, "rate limit reset"
    )


def assert_no_failures(
    what: str,
    report: LoadReport,
    figures: Figures,
    measured: Collection[str] = (),
) -> None:
    """The steady client saw only the answers it expects, of every kind but those
    `measured` (reported, not held), and the store holds exactly what it wrote."""
    figures.add(f"{what}: {report.summary()}")
    figures.add(f"{what}, by kind: {report.kind_lines()}")
    failed = [kind for kind, count in report.kinds.items() if count.failed]
    held = [kind for kind in failed if kind not in measured]
    assert not held, f"{what}: failed requests: {report.failures[:10]}"
    assert not report.data_problems, f"{what}: data check: {report.data_problems}"


def step_rolling_update(image_b: str, base: str, figures: Figures) -> None:
    """6. The deploy of B under steady load: zero failed requests."""
    with SteadyLoad(
        f"{base}/", STEADY_RATE, max_seconds=TIMEOUT + 60, sources=CLIENTS
    ) as load:
        wait_until(lambda: load.report.sent >= 2 * STEADY_RATE, 30, "steady load")
        started = time.monotonic()
        result = deploy_cli(image_b, VERSION_B, f"{base}/")
        assert result.returncode == 0, f"deploy of B failed: {result.stderr}"
        assert "changed: prework_stack_web" in result.stdout, result.stdout
        figures.add(f"rolling update A->B: {time.monotonic() - started:.1f} s")
        sent = load.report.sent
        wait_until(lambda: load.report.sent >= sent + 2 * STEADY_RATE, 30, "load after")
    assert_no_failures("load during the update", load.report, figures)
    assert load.report.versions[VERSION_B] > 0, load.report.versions
    replicas_report(VERSION_B, f"{base}/")


def step_rollback(image_broken: str, image_b: str, base: str, figures: Figures) -> None:
    """7. Deploy an image whose health check fails: Swarm rolls back, zero failures."""
    with SteadyLoad(
        f"{base}/", STEADY_RATE, max_seconds=TIMEOUT + 60, sources=CLIENTS
    ) as load:
        wait_until(lambda: load.report.sent >= 2 * STEADY_RATE, 30, "steady load")
        started = time.monotonic()
        result = deploy_cli(image_broken, VERSION_BROKEN, f"{base}/")
        figures.add(
            f"update to the broken image and rollback: "
            f"{time.monotonic() - started:.1f} s"
        )
    assert result.returncode == 1, f"deploy of a broken image: {result.returncode}"
    # Swarm's own rollback (the health check), which the deploy waited for.
    assert "Swarm rolled prework_stack_web's update back" in result.stderr
    assert "rolled back: prework_stack_web" in result.stderr, result.stderr
    assert_no_failures("load during the rollback", load.report, figures)
    assert set(load.report.versions) == {VERSION_B}, load.report.versions
    state = service_state(WEB)
    assert image_matches(state.image, image_b), state.image
    assert state.update_state == "rollback_completed", state.update_state
    replicas_report(VERSION_B, f"{base}/")
