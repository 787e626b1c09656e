"""Deploys that fail in ways only a real swarm shows (issue #12, point 3).

- `docker stack deploy` itself fails part-way: Swarm rejects one service's spec (a
  memory limit below its minimum) after it may already have updated others. What
  changed is rolled back, as after a failed verification.
- A service whose UpdateStatus is a rollback left from an earlier deploy: the next
  deploy that fails (its replicas never ready) waits for Swarm's rollback of its own
  update, not the left-over one, and rolls back.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from deploy.swarm import service_spec, service_state
from e2e.deploys import finish_load, started_load, step_unready
from e2e.scenario import (
    GOOD_FILES,
    VERSION_A,
    VERSION_B,
    Figures,
    assert_no_failures,
    deploy_cli,
    replicas_report,
)
from devstack.harness import STACK, WEB

# A spec the docker client passes on and Swarm refuses (its manager checks that a
# memory limit is at least 4 MiB), for Redis only, as a last compose file.
REFUSED_REDIS = """version: "3.9"
services:
  redis:
    deploy:
      resources:
        limits:
          memory: 1M
"""
# `docker stack deploy` updates the services in no fixed order (a Go map), so Redis's
# rejection comes before or after web's and nginx's updates; tries until one run shows
# the partial case (at 1/3 a try, 6 tries all missing it is 1 in 729).
PARTIAL_TRIES = 6


def step_unready_after_swarm_rollback(
    image_b: str, base: str, figures: Figures
) -> None:
    """The unready deploy, on a web whose UpdateStatus is the broken image's rollback.

    The deploy must not take that left-over `rollback_completed` for Swarm rolling
    back its own update: web ends on a rollback of its own, newer.
    """
    left = service_state(WEB)
    assert left.update_state == "rollback_completed", left.update_state
    step_unready(image_b, base, figures)
    after = service_state(WEB)
    assert after.update_started != left.update_started, "no rollback of its own"
    assert after.update_state == "rollback_completed", after.update_state


def step_partial_stack_deploy(image_a: str, base: str, figures: Figures) -> None:
    """A to web and nginx's stack image back, with Redis's image refused by Swarm."""
    names = [f"{STACK}_{name}" for name in ("edge", "nginx", "redis", "web")]
    specs = {name: service_spec(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="prework-e2e-") as folder:
        overlay = Path(folder) / "docker-compose.refused-redis.yml"
        overlay.write_text(REFUSED_REDIS)
        tries_until_partial(image_a, base, figures, (*GOOD_FILES, str(overlay)), specs)
    replicas_report(VERSION_B, f"{base}/")


def tries_until_partial(
    image_a: str,
    base: str,
    figures: Figures,
    files: tuple[str, ...],
    specs: dict[str, Any],
) -> None:
    """Deploy `files` until a run changed a service before Redis's refusal."""
    names = list(specs)
    for attempt in range(1, PARTIAL_TRIES + 1):
        load = started_load(base)
        try:
            started = time.monotonic()
            result = deploy_cli(image_a, VERSION_A, f"{base}/", files=files)
            took = time.monotonic() - started
        finally:
            finish_load(load)
        assert result.returncode == 1, f"partial deploy: {result.returncode}"
        assert f"{STACK}_redis" in result.stderr, result.stderr
        what = f"partial stack deploy, try {attempt}"
        assert_no_failures(what, load.report, figures)
        assert set(load.report.versions) <= {VERSION_A, VERSION_B}, load.report
        changed = [name for name in names if service_spec(name) != specs[name]]
        assert not changed, f"not back on their previous spec: {changed}"
        if "rolled back: " in result.stderr:
            figures.add(f"{what}: failed, rolled back in {took:.1f} s")
            break
        assert "none rolled back" in result.stderr, result.stderr
    else:
        raise AssertionError(f"Redis was refused first in all {PARTIAL_TRIES} tries")
