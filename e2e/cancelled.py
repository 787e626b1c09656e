"""A deploy cancelled as GitHub's runner cancels a job: SIGINT once the update is
under way, SIGTERM 7.5 s later if the deploy still runs. The swarm must be back on
the previous version, every replica, and the steady client must not notice.
"""

from __future__ import annotations

import signal
import subprocess  # nosec B404 - runs `python -m deploy` as the deploy job does
import time

from deploy.swarm import image_matches, service_state
from devstack import wait_until
from devstack.harness import WEB
from e2e import images
from e2e.deploys import finish_load, started_load
from e2e.load import LoadReport
from e2e.scenario import (
    TIMEOUT,
    Figures,
    assert_no_failures,
    deploy_command,
    replicas_report,
)

# What GitHub's runner waits between its SIGINT and its SIGTERM on a cancel.
RUNNER_GRACE = 7.5


def update_under_way(image: str, version: str, report: LoadReport) -> bool:
    """Swarm is updating web, and a replica of `image` runs and has answered the
    steady client at `version`: the swarm is part-way between the two."""
    if not report.versions.get(version):
        return False
    state = service_state(WEB)
    return state.update_state == "updating" and any(
        image_matches(task.image, image) for task in state.running_tasks()
    )


def cancel_as_runner(deploy: subprocess.Popen[str]) -> tuple[str, str, bool]:
    """SIGINT, then SIGTERM after the runner's grace if still running; the deploy's
    output and whether the SIGTERM was sent."""
    deploy.send_signal(signal.SIGINT)
    try:
        out, err = deploy.communicate(timeout=RUNNER_GRACE)
        return out, err, False
    except subprocess.TimeoutExpired:
        deploy.send_signal(signal.SIGTERM)
    out, err = deploy.communicate(timeout=TIMEOUT + 60)
    return out, err, True


def step_cancelled_deploy(
    image: str, version: str, previous: str, base: str, figures: Figures
) -> None:
    """A deploy of `image` cancelled mid-update leaves web on `previous`, all of it."""
    previous_image = service_state(WEB).image
    load = started_load(base)
    try:
        started = time.monotonic()
        deploy = subprocess.Popen(  # nosec B603 - fixed argv
            [*deploy_command("deploy", f"{base}/"), "--image", image,
             "--version", version, "--actor", "e2e-cancelled"],
            cwd=images.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            wait_until(
                lambda: update_under_way(image, version, load.report),
                60,
                f"a replica of {image} answering, the update under way",
            )
        finally:
            out, err, terminated = cancel_as_runner(deploy)
        took = time.monotonic() - started
    finally:
        finish_load(load)
    print(f"[e2e] the cancelled deploy said:\n{out}{err}".rstrip(), flush=True)
    assert deploy.returncode == 1, f"the cancelled deploy exited {deploy.returncode}"
    assert "cancelled by SIGINT" in err and "rolled back: " in err, err
    assert not terminated or "SIGTERM ignored" in err, err
    state = service_state(WEB)
    assert state.image == previous_image and state.converged(), state
    replicas_report(previous, f"{base}/")
    sigterm = "SIGTERM too (ignored)" if terminated else "no SIGTERM needed"
    figures.add(
        f"deploy of {version} cancelled mid-update, once {version} answered (SIGINT, "
        f"{sigterm}): back on {previous}, {state.replicas} of {state.replicas} "
        f"replicas, {took:.1f} s"
    )
    assert_no_failures("load during the cancelled deploy", load.report, figures)
