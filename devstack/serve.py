"""`nox -s serve`: the app under gunicorn on loopback, in the foreground, until Ctrl-C.

With `--proxy`, nginx (and redis-server when installed, for the cache) run in front of
it; they stop when gunicorn does. Ports: $PREWORK_APP_PORT (8000) for the app,
$PREWORK_HTTP_PORT (8080) for nginx.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack

from devstack.binaries import MissingBinary
from devstack.commands import foreground
from devstack.gunicorn import CONFIG, ROOT
from devstack.ports import LOOPBACK
from devstack.processes import StartFailed
from devstack.proxy import local_stack


def start_proxy(stack: ExitStack, app_port: int, http_port: int) -> dict[str, str]:
    """nginx (and redis-server when installed) in front of the app; the app's env."""
    local = stack.enter_context(local_stack(app_port, http_port))
    print(f"nginx on {local.nginx.url}/, access log {local.nginx.access_log}")
    if local.redis_url is None:
        print("redis-server is not installed: the cache is off")
        return {}
    print(f"redis-server at {local.redis_url}")
    return {"REDIS_URL": local.redis_url}


def main(argv: list[str] | None = None) -> int:
    """Serve the app with the embedded store (APP_ENV=development)."""
    parser = argparse.ArgumentParser(prog="nox -s serve --", description=main.__doc__)
    parser.add_argument("--proxy", action="store_true", help="nginx and redis in front")
    args = parser.parse_args(argv)
    app_port = int(os.environ.get("PREWORK_APP_PORT", "8000"))
    http_port = int(os.environ.get("PREWORK_HTTP_PORT", "8080"))
    env = {**os.environ, "APP_ENV": "development"}
    with ExitStack() as stack:
        try:
            if args.proxy:
                env.update(start_proxy(stack, app_port, http_port))
        except (MissingBinary, StartFailed) as error:
            print(error, file=sys.stderr)
            return 2
        print(f"serving http://{LOOPBACK}:{app_port}/ (Ctrl-C stops it)", flush=True)
        argv = [sys.executable, "-m", "gunicorn", "--config", str(CONFIG)]
        argv += ["--bind", f"{LOOPBACK}:{app_port}"]
        return foreground(argv, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
