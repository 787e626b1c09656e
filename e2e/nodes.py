"""`python -m e2e --nodes 3`: the stack on several nodes, under load.

The images are built once on an engine in the host namespace (the only part that needs
one: builds reach PyPI and Debian's mirror), saved, and loaded into each node of a
swarm of namespaced engines (swarm_nodes). The stack is deployed with the production
compose files and `python -m deploy`; every step then runs under a steady client on
the host that asks nginx's node at its bridge address and counts answers per replica.
"""

from __future__ import annotations

import dataclasses
import json
import hashlib
import os
import subprocess  # nosec B404 - TimeoutExpired of the log command
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import docker, run
from devstack.harness import FAILURES
from devstack.dockerd import Dockerd, engine_answers
from devstack.swarm_nodes import swarm_nodes
from e2e import images
from e2e.node_steps import Nodes, run_steps
from e2e.scenario import Figures
from e2e.stack import create_secrets, save_logs, stack_environment

BuildImages = Callable[[Figures], images.BaseImages]


@contextmanager
def build_engine() -> Iterator[bool]:
    """The engine at DOCKER_HOST if one answers (False), else our own dockerd (True)."""
    if engine_answers():
        yield False
        return
    with Dockerd():
        yield True


# What the images are made of (the Dockerfiles' inputs); the archive is rebuilt when
# any of them changes. The commit is left out, so the images' revision label is the
# commit that built the cached archive (no step of the several-node scenario reads it).
IMAGE_SOURCES = (
    "Dockerfile",
    "pyproject.toml",
    "gunicorn.conf.py",
    "app/",
    "e2e/standins/",
    "e2e/broken.Dockerfile",
)


def source_key(made: list[str]) -> str:
    """A digest of the images' sources (IMAGE_SOURCES, uncommitted too) and tags."""
    digest = hashlib.sha256("\0".join(made).encode())
    listed = run(
        [
            "git",
            "-C",
            str(images.ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *IMAGE_SOURCES,
        ]
    ).stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        path = images.ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_archive(
    build: BuildImages, made: list[str], figures: Figures
) -> tuple[images.BaseImages, Path]:
    """Every image, built on a host engine and `docker save`d into one archive, kept
    in the cache under a digest of its sources: unchanged sources are not rebuilt."""
    archive = images.CACHE / f"nodes-images-{source_key(made)}.tar"
    bases = archive.with_suffix(".json")
    if archive.is_file() and bases.is_file():
        figures.add(f"images: the saved archive of unchanged sources, {archive.name}")
        return images.BaseImages(**json.loads(bases.read_text())), archive
    started = time.monotonic()
    with build_engine() as own:
        figures.add(f"build engine up: {time.monotonic() - started:.1f} s")
        base = build(figures)
        started = time.monotonic()
        base = images.with_monitoring(base)
        figures.add(f"monitoring images: {time.monotonic() - started:.1f} s")
        images.CACHE.mkdir(parents=True, exist_ok=True)
        for old in images.CACHE.glob("nodes-images-*"):
            old.unlink()
        partial = archive.with_suffix(".partial")
        started = time.monotonic()
        docker("save", "--output", str(partial), *made, base.python, base.redis,
               base.nginx, *base.monitoring.values())  # fmt: skip
        figures.add(f"docker save: {time.monotonic() - started:.1f} s")
        partial.rename(archive)
        bases.write_text(json.dumps(dataclasses.asdict(base)))
        if not own:
            docker("image", "rm", *made, check=False)
        started = time.monotonic()
    figures.add(f"build engine stopped: {time.monotonic() - started:.1f} s")
    return base, archive


def deploy_nodes(
    build: BuildImages, made: list[str], count: int, figures: Figures, charts: Path
) -> None:
    """Images, nodes, secrets, then every step (a chart of each in `charts`); logs
    kept when a step fails."""
    failed = True
    previous_host = os.environ.get("DOCKER_HOST")
    try:
        started = time.monotonic()
        base, archive = build_archive(build, made, figures)
        figures.add(
            f"images archive ready: {time.monotonic() - started:.1f} s, "
            f"{archive.stat().st_size / 2**20:.0f} MiB"
        )
        with swarm_nodes(count, keep_on=lambda: failed) as swarm:
            started = time.monotonic()
            swarm.load_images(archive)
            figures.add(
                f"{count} nodes Ready, images loaded into each: "
                f"{time.monotonic() - started:.1f} s"
            )
            os.environ["DOCKER_HOST"] = swarm.manager.docker_host
            nodes = Nodes.of(swarm, charts)
            stack_environment(base.redis, base.nginx, 80)
            # The monitoring overlay's images (node_steps deploys it).
            os.environ.update(base.monitoring)
            create_secrets()
            try:
                run_steps(nodes, figures)
                failed = False
            finally:
                if failed:
                    keep_service_logs()
    finally:
        if previous_host is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = previous_host


def keep_service_logs() -> None:
    """The services' logs, as far as the manager can still fetch them."""
    try:
        print(f"[e2e] services' logs kept in {save_logs()}", flush=True)
    except subprocess.TimeoutExpired as error:
        # A task on a node that is gone can hold `docker service logs` forever.
        print(f"[e2e] services' logs incomplete: {error}", flush=True)


def main_nodes(build: BuildImages, made: list[str], count: int) -> int:
    """The several-node scenario; 0 when every step held, 1 with the reason if not."""
    started = time.monotonic()
    figures = Figures()
    # Outlives the run, as the logs do: the steps' timeline charts.
    charts = Path(tempfile.mkdtemp(prefix="prework-e2e-charts-"))
    try:
        deploy_nodes(build, made, count, figures, charts)
    except FAILURES as error:
        traceback.print_exc()
        print(f"[e2e] FAILED: {error}", flush=True)
        print(f"[e2e] the steps' charts so far in {charts}", flush=True)
        return 1
    figures.add(f"total: {time.monotonic() - started:.1f} s")
    figures.add(f"the steps' timeline charts: {charts}")
    print("[e2e] passed:\n  " + "\n  ".join(figures.lines), flush=True)
    return 0
