"""The e2e's deploy steps beyond the first ones: a re-run, a deploy whose replicas are
not ready, a change to nginx's config and image, and the edge replaced, each under
steady load through the published port.
"""

from __future__ import annotations

import os
import time

import requests

from deploy.sequence import previous_update, wait_for_convergence
from deploy.swarm import service_spec, service_state
from devstack import docker, run, wait_until
from e2e import images
from e2e.load import LoadReport, SteadyLoad
from e2e.scenario import (
    CLIENTS,
    STEADY_RATE,
    TIMEOUT,
    VERSION_B,
    Figures,
    assert_no_failures,
    deploy_cli,
    replicas_report,
)
from devstack.harness import STACK, WEB

NGINX = f"{STACK}_nginx"
EDGE = f"{STACK}_edge"
# A template change and an image (a new tag of the same image) made by the e2e itself
# (removed with the stack).
CHANGED_TEMPLATE = "prework_e2e_nginx_template_changed"
CHANGED_IMAGE = "prework-e2e/nginx:changed"
TEMPLATE_TARGET = "/etc/nginx/templates/default.conf.template"


def started_load(base: str) -> SteadyLoad:
    """A steady client on `/` that has already sent a few requests."""
    load = SteadyLoad(
        f"{base}/", STEADY_RATE, max_seconds=TIMEOUT + 120, sources=CLIENTS
    ).__enter__()
    wait_until(lambda: load.report.sent >= 2 * STEADY_RATE, 30, "steady load")
    return load


def finish_load(load: SteadyLoad) -> None:
    """A few more requests after the step, then stop."""
    sent = load.report.sent
    wait_until(lambda: load.report.sent >= sent + 2 * STEADY_RATE, 30, "load after")
    load.stop()


def step_rerun(image_b: str, base: str, figures: Figures) -> None:
    """A re-run of the deploy of B changes nothing and rolls nothing back."""
    tasks_before = {t.container_id for t in service_state(WEB).running_tasks()}
    load = started_load(base)
    try:
        started = time.monotonic()
        result = deploy_cli(image_b, VERSION_B, f"{base}/")
        figures.add(f"re-run of the deploy of B: {time.monotonic() - started:.1f} s")
    finally:
        finish_load(load)
    # Before the deploy's own verdict: what the client saw says more when both fail.
    assert_no_failures("load during the re-run", load.report, figures)
    assert result.returncode == 0, f"re-run failed: {result.stderr}"
    assert "changed: nothing (a re-run)" in result.stdout, result.stdout
    # Swarm records an update for the re-sent spec, but replaces no replica.
    tasks_after = {t.container_id for t in service_state(WEB).running_tasks()}
    assert tasks_after == tasks_before, f"{tasks_before} -> {tasks_after}"
    assert set(load.report.versions) == {VERSION_B}, load.report.versions


def step_unready(image_b: str, base: str, figures: Figures) -> None:
    """Production's files alone: MongoDB unreachable, never ready, rolled back.

    A replica is healthy only once it was ready (app/healthcheck.py), so the first new
    replica never enters Docker's DNS (nginx sends it nothing), turns unhealthy, and
    Swarm rolls the update back before a ready replica is replaced: 0 failed of every
    kind.
    """
    spec_before = service_spec(WEB)
    load = started_load(base)
    try:
        started = time.monotonic()
        result = deploy_cli(
            image_b, VERSION_B, f"{base}/", files=("docker-compose.yml",),
            verify_timeout=20,
        )  # fmt: skip
        figures.add(
            "deploy with an unreachable MongoDB, Swarm's rollback: "
            f"{time.monotonic() - started:.1f} s"
        )
    finally:
        finish_load(load)
    assert result.returncode == 1, f"unready deploy: {result.returncode}"
    assert "Swarm rolled prework_stack_web's update back" in result.stderr
    assert "rolled back: prework_stack_web" in result.stderr, result.stderr
    assert_no_failures("load during the unready deploy", load.report, figures)
    assert set(load.report.versions) == {VERSION_B}, load.report.versions
    assert service_spec(WEB) == spec_before, "web is not back on its previous spec"
    replicas_report(VERSION_B, f"{base}/")


def step_nginx_change(base: str, figures: Figures) -> None:
    """nginx's template, then its image, change under load: 0 failed requests.

    nginx has no published port: the edge hands each connection to an nginx task, so
    the new task (start-first) listens before the old one stops, and a connection the
    stopping one refuses goes to the next address.
    """
    spec = service_spec(NGINX)
    current = next(
        config
        for config in spec["TaskTemplate"]["ContainerSpec"]["Configs"]
        if config["File"]["Name"] == TEMPLATE_TARGET
    )
    template = (images.ROOT / "nginx/templates/default.conf.template").read_text()
    run(
        ["docker", "config", "create", CHANGED_TEMPLATE, "-"],
        stdin=template + "\n# changed by the e2e\n",
    )
    report = updated_under_load(
        base, figures, "nginx template change", NGINX,
        "--config-rm", current["ConfigName"],
        "--config-add", f"source={CHANGED_TEMPLATE},target={TEMPLATE_TARGET}",
    )  # fmt: skip
    assert not report.failures, f"template change: {report.failures[:10]}"
    docker("tag", nginx_image(), CHANGED_IMAGE)
    report = updated_under_load(
        base, figures, "nginx image change", NGINX, "--image", CHANGED_IMAGE
    )
    assert not report.failures, f"image change: {report.failures[:10]}"


def step_edge_change(base: str, figures: Figures) -> None:
    """The rare case: the edge itself is replaced (stop-first, host-mode port).

    Measured, not held to 0: the published port answers nothing between the old
    edge's stop and the new one's listening. A refused connection is tried again
    (e2e/load.py, REFUSED_RETRIES), so the slowest answer spans that gap; each
    failure is said with its reason.
    """
    report = updated_under_load(base, figures, "edge replaced", EDGE, "--force")
    figures.add(
        f"edge replaced: {len(report.failures)} failed, {report.resent} resent;"
        f" the slowest answer {report.slowest:.1f} s spans the published port's gap"
    )
    if report.failures:
        figures.add(f"edge replaced, failed: {'; '.join(report.failures)}")


def updated_under_load(
    base: str, figures: Figures, what: str, service: str, *update: str
) -> LoadReport:
    """`docker service update` of `service` while a steady client asks `/`."""
    load = started_load(base)
    try:
        before = previous_update(service)
        started = time.monotonic()
        docker("service", "update", "--detach", *update, service)
        wait_for_convergence(service, None, before, TIMEOUT)
        wait_until(lambda: get_ok(base), 30, f"{service} answering again")
        took = time.monotonic() - started
    finally:
        finish_load(load)
    figures.add(f"{what}: {took:.1f} s until converged; {load.report.summary()}")
    figures.add(f"{what}, by kind: {load.report.kind_lines()}")
    assert not load.report.data_problems, f"{what}: {load.report.data_problems}"
    assert service_state(service).converged()
    return load.report


def nginx_image() -> str:
    """The image the stack's nginx was deployed with (e2e.stack sets it)."""
    return os.environ["NGINX_IMAGE"]


def get_ok(base: str) -> bool:
    """True when nginx answers `/nginx-health`."""
    try:
        return requests.get(f"{base}/nginx-health", timeout=2).ok
    except requests.RequestException:
        return False


def remove_changed_template() -> None:
    """The config and the image tag step_nginx_change made (after the stack is gone)."""
    docker("config", "rm", CHANGED_TEMPLATE, check=False)
    docker("image", "rm", CHANGED_IMAGE, check=False)
