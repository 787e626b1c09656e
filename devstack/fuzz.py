"""`nox -s fuzz`: schemathesis against the app on loopback, bounded in examples, time.

The app runs as the stack runs it (gunicorn.conf.py, its 2 workers) on the embedded
store with a throwaway redis-server; schemathesis reads app/openapi.json from the app,
runs every check (stateful links included) with schemathesis.toml's one reasoned
exception, and its exit status is this program's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from devstack.commands import run
from devstack.binaries import MissingBinary
from devstack.gunicorn import ROOT, GunicornServer
from devstack.processes import StartFailed
from devstack.redis import RedisServer

# (examples per operation, seconds in all) of a full and a `--short` (CI) run.
BOUNDS = {"full": (30, 420), "short": (5, 75)}


def schemathesis_argv(url: str, examples: int, seconds: int) -> list[str]:
    """The schemathesis command line for the app at `url`."""
    return [
        *(sys.executable, "-m", "schemathesis.cli"),
        *("--config-file", str(ROOT / "schemathesis.toml")),
        *("run", f"{url}/openapi.json", "--checks", "all"),
        *("--max-examples", str(examples), "--max-time", str(seconds)),
        *("--request-timeout", "10", "--no-color"),
    ]


def main(argv: list[str] | None = None) -> int:
    """Fuzz the app; extra arguments go to `schemathesis run`."""
    parser = argparse.ArgumentParser(prog="nox -s fuzz --", description=main.__doc__)
    parser.add_argument("--short", action="store_true", help="CI's bounded run")
    args, extra = parser.parse_known_args(argv)
    examples, seconds = BOUNDS["short" if args.short else "full"]
    with tempfile.TemporaryDirectory(prefix="prework-fuzz-") as work:
        environment = {
            "APP_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "EMBEDDED_STORE_DIR": str(Path(work) / "db"),
        }
        try:
            with (
                RedisServer() as redis,
                GunicornServer(
                    {**environment, "REDIS_URL": redis.url}, workers=2
                ) as app,
            ):
                command = [*schemathesis_argv(app.url, examples, seconds), *extra]
                return run(
                    command, cwd=Path(work), check=False, timeout=None, capture=False
                ).returncode
        except (MissingBinary, StartFailed) as error:
            print(error, file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
