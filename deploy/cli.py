"""CLI: deploy IMAGE as the stack's web service, converge, verify or roll back."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from deploy import swarm
from deploy.verify import unverified_replicas

NGINX_TEMPLATE = Path("nginx/templates/default.conf.template")
# The nginx service's configs besides the template; one digest names them all.
NGINX_UPSTREAM_WATCH = Path("nginx/upstream-watch.sh")
POLL_INTERVAL = 1.0


class UsageError(Exception):
    """Bad command line input: one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class DeployFailed(Exception):
    """The deploy did not reach a verified state; the service was rolled back."""


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments, as COMMON.md fixes them."""
    parser = OneLineParser(prog="python -m deploy", description=__doc__)
    parser.add_argument("--stack", required=True, help="stack name, e.g. prework_stack")
    parser.add_argument(
        "--compose",
        required=True,
        action="append",
        help="the stack's compose file; repeat to add override files",
    )
    parser.add_argument("--image", required=True, help="image for the web service")
    parser.add_argument(
        "--version", required=True, help="version every replica must report"
    )
    parser.add_argument("--url", required=True, help="the stack's URL through nginx")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds (default 300)"
    )
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parsed and checked arguments; raises UsageError on bad input."""
    args = build_parser().parse_args(argv)
    for compose in args.compose:
        if not Path(compose).is_file():
            raise UsageError(f"--compose {compose}: no such file")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"--url {args.url}: must start with http:// or https://")
    if not 0 < args.timeout <= 3600:
        raise UsageError(f"--timeout {args.timeout:g}: must be in (0, 3600] seconds")
    for name in ("stack", "image", "version"):
        if not getattr(args, name).strip():
            raise UsageError(f"--{name}: must not be empty")
    return args


def deploy_environment(compose: Path, image: str) -> dict[str, str]:
    """The environment docker-compose.yml reads: the web image and the config name."""
    env = dict(os.environ, WEB_IMAGE=image)
    template = compose.parent / NGINX_TEMPLATE
    if template.is_file():
        # Swarm configs are immutable: a changed template (or watcher) gets new names.
        digest = hashlib.sha256(template.read_bytes())
        watcher = compose.parent / NGINX_UPSTREAM_WATCH
        if watcher.is_file():
            digest.update(watcher.read_bytes())
        env["NGINX_TEMPLATE_DIGEST"] = digest.hexdigest()[:12]
    return env


def previous_update(service: str) -> str | None:
    """When the service's last update started (None: no update, or no service)."""
    try:
        return swarm.service_state(service).update_started
    except swarm.DockerError:
        return None


def wait_for_convergence(
    service: str, image: str, before: str | None, timeout: float
) -> swarm.ServiceState:
    """Poll until every replica runs `image`; raise DeployFailed if it does not."""
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
                    f"Swarm rolled the update back: {state.update_message}"
                )
            if fresh and state.update_state == "paused":
                raise DeployFailed(f"the update paused: {state.update_message}")
            if swarm.image_matches(state.image, image) and state.converged():
                return state
            last_error = f"update {state.update_state or 'pending'}"
        time.sleep(POLL_INTERVAL)
    raise DeployFailed(f"{service} did not converge in {timeout:g} s ({last_error})")


def roll_back(service: str, timeout: float) -> None:
    """Roll back unless Swarm already does, then wait for the rollback to finish."""
    state = swarm.service_state(service)
    if state.update_state not in swarm.ROLLBACK_STATES:
        swarm.rollback(service)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = swarm.service_state(service)
        if state.update_state == "rollback_completed" and state.converged():
            return
        time.sleep(POLL_INTERVAL)
    raise DeployFailed(f"the rollback of {service} did not finish in {timeout:g} s")


def deploy(args: argparse.Namespace) -> None:
    """Deploy, converge and verify; on any failure roll back and raise DeployFailed."""
    service = f"{args.stack}_web"
    started = time.monotonic()
    before = previous_update(service)
    env = deploy_environment(Path(args.compose[0]), args.image)
    swarm.stack_deploy(args.stack, args.compose, env)
    try:
        state = wait_for_convergence(service, args.image, before, args.timeout)
        remaining = max(30.0, args.timeout - (time.monotonic() - started))
        hostnames = [task.hostname for task in state.running_tasks()]
        missing = unverified_replicas(args.url, hostnames, args.version, remaining)
        if missing:
            seen = ", ".join(f"{h}={v or 'unseen'}" for h, v in sorted(missing.items()))
            raise DeployFailed(
                f"replicas not reporting {args.version} at {args.url}: {seen}"
            )
    except (DeployFailed, swarm.DockerError) as error:
        try:
            roll_back(service, args.timeout)
        except (DeployFailed, swarm.DockerError) as failure:
            raise DeployFailed(
                f"{error}; and the rollback failed: {failure}"
            ) from error
        raise DeployFailed(f"{error}; {service} rolled back") from error
    print(f"{service}: {len(hostnames)} replicas report {args.version} at {args.url}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 verified, 1 rolled back (reason on stderr), 2 bad input."""
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
