"""The service image's size, built from one or more checkouts on the same base.

Each CONTEXT (default: this checkout) is built with its own Dockerfile on the
e2e's Python base: the official image when it can be pulled, else the Debian
stand-in. Needs an engine: the one at DOCKER_HOST, else a dockerd of its own (root;
it holds the machine's Docker lock while it runs, as devstack.dockerd's do).
Run: `nox -s bench -- image`, or `python -m benchmarks.bench_image DIR...`.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from devstack import docker
from devstack.dockerd import Dockerd, engine_answers
from e2e import images

ROOT = Path(__file__).resolve().parent.parent


def python_base() -> tuple[str, bool]:
    """The Python base image, and whether it is the Debian stand-in."""
    official = images.dockerfile_base_default()
    if images.pull_all({"python": official}):
        return official, False
    return images.build_standins().python, True


def image_size(context: Path, base: str, standin: bool, tag: str) -> int:
    """Build `context` as `tag` on `base`; the image's size in bytes."""
    images.build_dockerfile(context, tag, base, standin)
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).strip())


def main(argv: list[str] | None = None) -> int:
    """Print one Markdown row per context: its image size."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_image")
    parser.add_argument("contexts", nargs="*", type=Path, default=[ROOT])
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if not engine_answers():
            stack.enter_context(Dockerd())
        base, standin = python_base()
        print(f"base image: {base}")
        print("| context | image size (bytes) | MB |")
        print("| --- | ---: | ---: |")
        tags = [f"prework-bench-image:{n}" for n in range(len(args.contexts))]
        try:
            for context, tag in zip(args.contexts, tags):
                size = image_size(context, base, standin, tag)
                print(f"| {context} | {size} | {size / 1e6:.1f} |")
        finally:  # on a shared engine, leave nothing behind
            docker("image", "rm", "--force", *tags, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
