"""The deploy sequence: stack deploy, converge, verify every replica, and on any failure
(a signal included) roll back exactly what this deploy changed."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from deploy import placement, swarm
from deploy.cancel import Cancelled
from deploy.rollback import changed_services, roll_back_all
from deploy.verify import unverified_replicas

NGINX_TEMPLATE = Path("nginx/templates/default.conf.template")
# The nginx service's configs besides the template; one digest names them all.
NGINX_UPSTREAM_WATCH = Path("nginx/upstream-watch.sh")
# The stub_status server the monitoring overlay adds to nginx.
NGINX_STATUS_TEMPLATE = Path("nginx/templates/status.conf.template")
# The edge's configs have a digest of their own, so that a change to nginx's template
# leaves the edge (the published port) alone.
CONFIG_DIGESTS = {
    "NGINX_TEMPLATE_DIGEST": (
        NGINX_TEMPLATE,
        NGINX_UPSTREAM_WATCH,
        NGINX_STATUS_TEMPLATE,
    ),
    "EDGE_TEMPLATE_DIGEST": (
        Path("nginx/templates/edge.conf.template"),
        NGINX_UPSTREAM_WATCH,
    ),
    # docker-compose.monitoring.yml's Prometheus config and its alert rules.
    "PROMETHEUS_CONFIG_DIGEST": (
        Path("monitoring/prometheus.yml"),
        Path("monitoring/alerts.yml"),
    ),
}
POLL_INTERVAL = 1.0
VERIFIED = "verified"


class DeployFailed(Exception):
    """The deploy did not reach a verified state; `outcome` says how it ended."""

    def __init__(self, message: str, outcome: str = "failed") -> None:
        super().__init__(message)
        self.outcome = outcome


def deploy_environment(compose: Path, image: str) -> dict[str, str]:
    """The environment docker-compose.yml reads: the web image and the config names."""
    env = dict(os.environ, WEB_IMAGE=image)
    for variable, (template, *others) in CONFIG_DIGESTS.items():
        if not (compose.parent / template).is_file():
            continue
        # Swarm configs are immutable: a changed template (or watcher) gets new names.
        digest = hashlib.sha256((compose.parent / template).read_bytes())
        for other in others:
            if (compose.parent / other).is_file():
                digest.update((compose.parent / other).read_bytes())
        env[variable] = digest.hexdigest()[:12]
    return env


def describe_image(image: str) -> str:
    """The web image as deployed: tag and digest, or honestly, a tag only."""
    name, _, digest = image.partition("@")
    if digest:
        return f"image {name}, digest {digest}"
    local = swarm.local_image_id(name)
    where = f"; the manager's local image id is {local}" if local else ""
    return f"image {name}, no registry digest (deployed by tag{where})"


def previous_update(service: str) -> str | None:
    """When the service's last update started (None: no update, or no service)."""
    try:
        return swarm.service_state(service).update_started
    except swarm.DockerError:
        return None


def wait_for_convergence(
    service: str, image: str | None, before: str | None, timeout: float
) -> swarm.ServiceState:
    """Poll until every replica runs the spec (and `image`); else DeployFailed."""
    deadline = time.monotonic() + timeout
    last_error = "no state yet"
    while time.monotonic() < deadline:
        try:
            state = swarm.service_state(service)
        except swarm.DockerError as error:
            last_error = str(error)
        else:
            fresh = state.update_started != before
            if fresh and state.update_state in swarm.ROLLBACK_STATES:
                raise DeployFailed(
                    f"Swarm rolled {service}'s update back: {state.update_message}"
                )
            if fresh and state.update_state == "paused":
                raise DeployFailed(f"{service}'s update paused: {state.update_message}")
            matches = image is None or swarm.image_matches(state.image, image)
            if matches and state.converged():
                return state
            last_error = f"update {state.update_state or 'pending'}"
        time.sleep(POLL_INTERVAL)
    raise DeployFailed(f"{service} did not converge in {timeout:g} s ({last_error})")


def check_placement(specs: list[Any]) -> None:
    """Every label constraint can be met; warn where several nodes carry one."""
    errors, warnings = placement.placement_problems(
        placement.label_constraints(specs), swarm.nodes()
    )
    for warning in warnings:
        print(f"deploy: warning: {warning}", file=sys.stderr)
    if errors:
        raise DeployFailed("; ".join(errors))


def warn_about_store(spec: Any) -> None:
    """Say so when web runs outside APP_ENV=production (e.g. the embedded store)."""
    env = spec["TaskTemplate"]["ContainerSpec"].get("Env") or []
    for entry in env:
        if entry.startswith("APP_ENV=") and entry != "APP_ENV=production":
            print(
                f"deploy: warning: {spec['Name']} runs with {entry} (the embedded "
                "store of docker-compose.embedded-store.yml?): not for production",
                file=sys.stderr,
            )


def converge_and_verify(
    args: argparse.Namespace,
    before: dict[str, swarm.Snapshot],
    after: dict[str, swarm.Snapshot],
    started: float,
) -> int:
    """Wait for every service of the stack, then for every web replica ready."""
    web = f"{args.stack}_web"
    if web not in after:
        raise DeployFailed(f"the stack has no service {web}")
    check_placement([snapshot.spec for snapshot in after.values()])
    warn_about_store(after[web].spec)
    for name in sorted(after):
        image = args.image if name == web else None
        # An update or rollback that started since `before` is this deploy's own.
        previous = before[name].update_started if name in before else None
        remaining = max(1.0, args.timeout - (time.monotonic() - started))
        wait_for_convergence(name, image, previous, remaining)
    hostnames = [t.hostname for t in swarm.service_state(web).running_tasks()]
    missing = unverified_replicas(
        args.url, hostnames, args.version, args.verify_timeout
    )
    if missing:
        seen = ", ".join(f"{h}: {said}" for h, said in sorted(missing.items()))
        raise DeployFailed(
            f"replicas not ready at {args.version} through {args.url}: {seen}"
        )
    return len(hostnames)


def stack_deploy(args: argparse.Namespace) -> str | None:
    """`docker stack deploy`; its error message, or None when it succeeded."""
    env = deploy_environment(Path(args.compose[0]), args.image)
    try:
        swarm.stack_deploy(args.stack, args.compose, env)
    except swarm.DockerError as error:
        return str(error)
    return None


def deploy(args: argparse.Namespace) -> None:
    """Deploy, converge and verify; on failure roll back what this deploy changed."""
    started = time.monotonic()
    labelled = placement.label_single_node()
    if labelled:
        print(f"deploy: {labelled}")
    before = swarm.stack_snapshots(args.stack)
    after: dict[str, swarm.Snapshot] | None = None
    try:
        failure = stack_deploy(args)
        # Read even after a failed `docker stack deploy`: it may have updated some.
        after = swarm.stack_snapshots(args.stack)
        if failure is not None:
            raise DeployFailed(failure)
        count = converge_and_verify(args, before, after, started)
    except (DeployFailed, swarm.DockerError, Cancelled) as error:
        if after is None:  # stopped within the stack deploy: see what it changed
            after = swarm.stack_snapshots(args.stack)
        changed = changed_services(before, after)
        raise undo(str(error), changed, before, args.timeout) from error
    changed = changed_services(before, after)
    created = sorted(set(after) - set(before))
    what = ", ".join(changed) if changed else "nothing"
    if created:
        what += f"; created: {', '.join(created)}"
    elif not changed:
        what += " (a re-run)"
    print(
        f"{args.stack}_web: {count} replicas ready at {args.version} through "
        f"{args.url}; changed: {what}"
    )


def undo(
    reason: str, changed: list[str], before: dict[str, swarm.Snapshot], timeout: float
) -> DeployFailed:
    """Roll back the services this deploy changed; the whole failure, as an error."""
    if not changed:
        return DeployFailed(
            f"{reason}; this deploy changed no existing service: none rolled back",
            "unchanged",
        )
    failures = roll_back_all(changed, before, timeout)
    if failures:
        return DeployFailed(
            f"{reason}; and the rollback failed: {'; '.join(failures)}",
            "rollback failed",
        )
    return DeployFailed(f"{reason}; rolled back: {', '.join(changed)}", "rolled back")
