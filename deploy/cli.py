"""CLI: deploy the stack with IMAGE as its web service; converge, verify, roll back.

Verbs (`deploy` is the default, so `python -m deploy --stack ...` deploys):
  deploy    the stack with --image at --version, under the stack's deploy lock
  rollback  back to the previous verified deploy (or VERSION), verified like a deploy
  history   the stack's last deploys: who, which version and image, when, outcome
  lock      status | release: who holds the stack's deploy lock; break a stale one
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from deploy import history, lock, swarm
from deploy.cancel import Cancelled, signals_cancel
from deploy.sequence import VERIFIED, DeployFailed, deploy, describe_image

# The compose files when no --compose is given: this variable (the `production`
# environment's DEPLOY_COMPOSE_FILES in CI), else the base file alone.
COMPOSE_VARIABLE = "DEPLOY_COMPOSE_FILES"
DEFAULT_COMPOSE = "docker-compose.yml"
IMAGE = re.compile(r"^[^\s@]+(@sha256:[0-9a-f]{64})?$")
VERBS = ("deploy", "rollback", "history", "lock")
LIMIT = 3600.0


class UsageError(Exception):
    """Bad command line input: one line on stderr, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_stack_changing(parser: argparse.ArgumentParser) -> None:
    """The arguments of the verbs that change the stack: deploy and rollback."""
    parser.add_argument("--stack", required=True, help="stack name, e.g. prework_stack")
    parser.add_argument(
        "-c",
        "--compose",
        action="append",
        help="a compose file; repeat in order, as `docker stack deploy -c a -c b` "
        f"(default: ${COMPOSE_VARIABLE}, space-separated, else {DEFAULT_COMPOSE})",
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
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        help="seconds to wait for another deploy's lock (default 0: refuse at once)",
    )
    parser.add_argument(
        "--actor", default=lock.default_actor(), help="who deploys (default: you)"
    )
    parser.add_argument(
        "--message",
        default=lock.default_message(),
        help="why, kept with the lock and the record (default: the CI run's URL)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments, one sub-parser per verb."""
    parser = OneLineParser(
        prog="python -m deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(
        dest="verb", required=True, parser_class=OneLineParser
    )
    run = verbs.add_parser("deploy", help="deploy --image at --version (the default)")
    add_stack_changing(run)
    run.add_argument(
        "--image",
        required=True,
        help="web image, NAME:TAG@sha256:DIGEST (by digest) or NAME:TAG",
    )
    run.add_argument("--version", required=True, help="version every replica reports")
    back = verbs.add_parser("rollback", help="back to a verified deploy of the history")
    back.add_argument(
        "target",
        nargs="?",
        metavar="VERSION",
        help="a version from `history` (default: the one before the current)",
    )
    add_stack_changing(back)
    past = verbs.add_parser("history", help="the stack's last deploys")
    past.add_argument("--stack", required=True)
    past.add_argument("--last", type=int, default=10, help="how many (default 10)")
    held = verbs.add_parser("lock", help="status | release of the deploy lock")
    held.add_argument("action", choices=["status", "release"])
    held.add_argument("--stack", required=True)
    return parser


def check_limits(args: argparse.Namespace) -> None:
    """Every time limit within its range; UsageError otherwise."""
    for name in ("timeout", "verify_timeout", "lock_wait"):
        value, waits = getattr(args, name), name == "lock_wait"  # 0: do not wait
        if not (0 <= value if waits else 0 < value) or value > LIMIT:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} {value:g}: must be in {'[' if waits else '('}0, 3600]"
            )


def check_stack_changing(args: argparse.Namespace) -> None:
    """The checks of deploy's and rollback's arguments; UsageError on bad input."""
    if not args.compose:
        args.compose = os.environ.get(COMPOSE_VARIABLE, "").split() or [DEFAULT_COMPOSE]
    for compose in args.compose:
        if not Path(compose).is_file():
            raise UsageError(f"--compose {compose}: no such file")
    if not args.url.startswith(("http://", "https://")):
        raise UsageError(f"--url {args.url}: must start with http:// or https://")
    check_limits(args)
    if args.verb == "deploy":
        for name in ("image", "version"):
            if not getattr(args, name).strip():
                raise UsageError(f"--{name}: must not be empty")
        if not IMAGE.match(args.image):
            raise UsageError(f"--image {args.image}: want NAME:TAG[@sha256:<64 hex>]")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parsed and checked arguments; raises UsageError on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in VERBS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "deploy")  # the verb-less form the workflows use
    args = build_parser().parse_args(argv)
    if not args.stack.strip():
        raise UsageError("--stack: must not be empty")
    if args.verb in ("deploy", "rollback"):
        check_stack_changing(args)
    if args.verb == "history" and args.last < 1:
        raise UsageError(f"--last {args.last}: must be 1 or more")
    return args


def run_deploy(args: argparse.Namespace) -> int:
    """A deploy under the stack's lock, recorded in its history however it ends."""
    print(f"deploy: {describe_image(args.image)}; files {' '.join(args.compose)}")
    holder = lock.Holder(args.actor, args.version, args.message, lock.utc_now())
    with lock.held(args.stack, holder, args.lock_wait):
        outcome = "failed"
        try:
            deploy(args)
            outcome = VERIFIED
        except DeployFailed as error:
            outcome = error.outcome
            raise
        finally:
            record = history.Record(
                args.actor,
                args.version,
                args.image,
                holder.since,
                lock.utc_now(),
                outcome,
                args.message,
            )
            try:
                history.write(args.stack, record)
            except swarm.DockerError as error:
                print(f"deploy: warning: no history record: {error}", file=sys.stderr)
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    """A deploy of an earlier verified record's image and version."""
    target = history.rollback_target(history.records(args.stack), args.target)
    print(
        f"deploy: rollback to {target.version} ({target.image}), deployed "
        f"{target.finished} by {target.actor}"
    )
    args.image, args.version = target.image, target.version
    why = f"rollback to {target.version}"
    args.message = f"{why} ({args.message})" if args.message else why
    return run_deploy(args)


def run_history(args: argparse.Namespace) -> int:
    """Print the newest records."""
    found = history.records(args.stack)
    if not found:
        print(f"no deploy of {args.stack} recorded")
    for record in found[: args.last]:
        print(record.line())
    return 0


def run_lock(args: argparse.Namespace) -> int:
    """Say who holds the lock, or release it (a stale one, named as it goes)."""
    if args.action == "status":
        holder = lock.current_holder(args.stack)
    else:
        holder = lock.release(args.stack)
    if holder is None:
        print(f"the deploy lock of {args.stack} is free")
    else:
        verb = "held" if args.action == "status" else "released, it was held"
        print(f"the deploy lock of {args.stack} is {verb} by {holder.describe()}")
    return 0


COMMANDS = {
    "deploy": run_deploy,
    "rollback": run_rollback,
    "history": run_history,
    "lock": run_lock,
}
FAILURES = (DeployFailed, swarm.DockerError, lock.LockHeld, history.NoTarget, Cancelled)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 done, 1 failed (reason on stderr), 2 bad input."""
    try:
        args = parse(argv)
    except UsageError as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 2
    try:
        with signals_cancel():
            return COMMANDS[args.verb](args)
    except FAILURES as error:
        print(f"deploy: failed: {error}", file=sys.stderr)
        return 1
