"""CLI: deploy the stack with IMAGE as its web service; converge, verify, roll back."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from deploy import placement, swarm
from deploy.rollback import changed_services, roll_back_all
from deploy.verify import unverified_replicas

NGINX_TEMPLATE = Path("nginx/templates/default.conf.template")
# The nginx service's configs besides the template; one digest names them all.
NGINX_UPSTREAM_WATCH = Path("nginx/upstream-watch.sh")
# The edge's configs have a digest of their own, so that a change to nginx's template
# leaves the edge (the published port) alone.
CONFIG_DIGESTS = {
    "NGINX_TEMPLATE_DIGEST": (NGINX_TEMPLATE, NGINX_UPSTREAM_WATCH),
    "EDGE_TEMPLATE_DIGEST": (
        Path("nginx/templates/edge.conf.template"),
        NGINX_UPSTREAM_WATCH,
    ),
}
POLL_INTERVAL = 1.0
# The compose files when no --compose is given: this variable (the `production`
# environment's DEPLOY_COMPOSE_FILES in CI), else the base file alone.
COMPOSE_VARIABLE = "DEPLOY_COMPOSE_FILES"
DEFAULT_COMPOSE = "docker-compose.yml"
IMAGE = re.compile(r"^[^\s@]+(@sha256:[0-9a-f]{64})?$")


class UsageError(Exception):
    """Bad command line input: one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class DeployFailed(Exception):
    """The deploy did not reach a verified state."""


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = OneLineParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name, e.g. prework_stack")
    parser.add_argument(
        "-c",
        "--compose",
        action="append",
        help="a compose file; repeat in order, as `docker stack deploy -c a -c b` "
        f"(default: ${COMPOSE_VARIABLE}, space-separated, else {DEFAULT_COMPOSE})",
    )
    parser.add_argument(
        "--image",
        required=True,
        help="web image, NAME:TAG@sha256:DIGEST (by digest) or NAME:TAG",
    )
    parser.add_argument(
        "--version", required=True, help="version every replica must report"
    )
    parser.add_argument("--url", required=True, help="the stack's URL through nginx")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds (default 300)"
    )
    parser.add_argument(
        "--verify-timeout",
        type=float,
        default=60.0,
        help="seconds for every replica to answer ready once converged (default 60)",
    )
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parsed and checked arguments; raises UsageError on bad input."""
    args = build_parser().parse_args(argv)
    if not args.compose:
        args.compose = os.environ.get(COMPOSE_VARIABLE, "").split() or [DEFAULT_COMPOSE]
    for compose in args.compose:
        if not Path(compose).is_file():
            raise UsageError(f"--compose {compose}: no such file")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"--url {args.url}: must start with http:// or https://")
    for name in ("timeout", "verify_timeout"):
        if not 0 < getattr(args, name) <= 3600:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {getattr(args, name):g}: must be in (0, 3600]")
    for name in ("stack", "image", "version"):
        if not getattr(args, name).strip():
            raise UsageError(f"--{name}: must not be empty")
    if not IMAGE.match(args.image):
        raise UsageError(f"--image {args.image}: want NAME:TAG[@sha256:<64 hex>]")
    return args


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
    print(f"deploy: {describe_image(args.image)}; files {' '.join(args.compose)}")
    labelled = placement.label_single_node()
    if labelled:
        print(f"deploy: {labelled}")
    before = swarm.stack_snapshots(args.stack)
    failure = stack_deploy(args)
    # Read even after a failed `docker stack deploy`: it may have updated some services.
    after = swarm.stack_snapshots(args.stack)
    changed = changed_services(before, after)
    try:
        if failure is not None:
            raise DeployFailed(failure)
        count = converge_and_verify(args, before, after, started)
    except (DeployFailed, swarm.DockerError) as error:
        raise DeployFailed(undo(str(error), changed, before, args.timeout)) from error
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
) -> str:
    """Roll back the services this deploy changed; the whole failure message."""
    if not changed:
        return f"{reason}; this deploy changed no existing service: none rolled back"
    failures = roll_back_all(changed, before, timeout)
    if failures:
        return f"{reason}; and the rollback failed: {'; '.join(failures)}"
    return f"{reason}; rolled back: {', '.join(changed)}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 verified, 1 failed (reason on stderr), 2 bad input."""
    try:
        args = parse(argv)
    except UsageError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 2
    try:
        deploy(args)
    except (DeployFailed, swarm.DockerError) as error:
        print(f"deploy: failed: {error}", file=sys.stderr)
        return 1
    return 0
