"""The local proxy: nginx in front of an app's port, plus redis-server when installed.

`nox -s serve -- --proxy` uses `local_stack`; `python -m devstack.proxy` runs it in
front of an app that is already listening, until Ctrl-C (`--check`: only `nginx -t`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from devstack.binaries import MissingBinary
from devstack.nginx import NginxServer, check_config, write_config
from devstack.processes import StartFailed, temporary_folder
from devstack.redis import RedisServer


@dataclass(frozen=True)
class LocalStack:
    """nginx in front of the app, and a Redis URL when redis-server exists."""

    nginx: NginxServer
    redis_url: str | None


@contextmanager
def local_stack(
    upstream_port: int,
    listen_port: int | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[LocalStack]:
    """nginx in front of the app's port, and redis-server for its cache if installed."""
    with ExitStack() as stack:
        nginx = stack.enter_context(NginxServer(upstream_port, overrides, listen_port))
        try:
            redis: RedisServer | None = RedisServer()
        except MissingBinary:
            redis = None  # the cache is optional: the app runs without it
        redis_url = stack.enter_context(redis).url if redis is not None else None
        yield LocalStack(nginx=nginx, redis_url=redis_url)


def check_stack_config() -> int:
    """`nginx -t` on the template rendered with the stack defaults; its exit code."""
    with temporary_folder("nginx-t") as prefix:
        result = check_config(write_config(prefix))
    print(result.stderr.strip().replace(str(prefix), "<prefix>"), file=sys.stderr)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    """Run the local proxy in front of an app that listens on --upstream-port."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.proxy", description=main.__doc__
    )
    parser.add_argument("--upstream-port", type=int, default=8000)
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PREWORK_HTTP_PORT", "8080"))
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only run `nginx -t` on the config rendered with nginx/template.env",
    )
    args = parser.parse_args(argv)
    # SIGTERM stops the services as Ctrl-C does (they run in groups of their own).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.check:
            return check_stack_config()
        with local_stack(args.upstream_port, args.port) as local:
            print(f"nginx on {local.nginx.url} -> 127.0.0.1:{args.upstream_port}")
            print(f"access log: {local.nginx.access_log}")
            print(f"redis: {local.redis_url or 'not installed (redis-server)'}")
            signal.pause()  # until Ctrl-C
    except (MissingBinary, StartFailed) as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
