"""What the proofs on a real swarm (e2e/ and rehearsal/) share, defined once: the
stack's name and files, its secrets, how a signal stops a run, and what counts as a
failed run (kept for inspection) rather than a crash. The machine's Docker lock is
devstack.dockerd's: whoever starts an engine in the host namespace holds it.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Mapping
from types import FrameType

from devstack.binaries import MissingBinary
from devstack.commands import CommandFailed, run
from devstack.processes import StartFailed

STACK = "prework_stack"
WEB = f"{STACK}_web"
# The embedded store on a volume, chosen explicitly: no MongoDB runs here.
STORE_OVERLAY = "docker-compose.embedded-store.yml"
# Production's files alone point web at this MongoDB, which never resolves (.invalid):
# replicas that run but are never ready.
UNREACHABLE_MONGO_URI = "mongodb://mongo.invalid:27017/prework"
# docker-compose.yml's secret names by the variable that may rename each.
DEFAULT_SECRETS = {
    "SECRET_KEY_SECRET": "prework_secret_key",  # nosec B105 - a name, not a value
    "MONGO_URI_SECRET": "prework_mongo_uri",  # nosec B105 - a name, not a value
    "REDIS_PASSWORD_SECRET": "prework_redis_password",  # nosec B105 - a name
}
# A run that ends in one of these failed (its logs are kept); anything else is a bug.
FAILURES: tuple[type[Exception], ...] = (
    AssertionError,  # devstack.TimedOut included
    CommandFailed,
    MissingBinary,
    StartFailed,
)


def create_secrets(names: Mapping[str, str] = DEFAULT_SECRETS) -> None:
    """The stack's external secrets (named by DEFAULT_SECRETS' variables): random,
    but the MongoDB URI, which is UNREACHABLE_MONGO_URI."""
    values = {
        "SECRET_KEY_SECRET": secrets.token_hex(32),
        "MONGO_URI_SECRET": UNREACHABLE_MONGO_URI,
        "REDIS_PASSWORD_SECRET": secrets.token_hex(24),
    }
    for variable, value in values.items():
        run(["docker", "secret", "create", names[variable], "-"], stdin=value)


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT or SIGTERM as Ctrl-C: the `with` blocks unwind and clean up."""
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the run as Ctrl-C does: everything is torn down.

    Set here, not inherited: a shell starts background jobs with SIGINT ignored.
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, interrupt)
