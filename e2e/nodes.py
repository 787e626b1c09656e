"""`python -m e2e --nodes 3`: the stack on several nodes, under load.

The images are built once on an engine in the host namespace (the only part that needs
one: builds reach PyPI and Debian's mirror) while a swarm of namespaced engines starts
(swarm_nodes), then saved once and streamed into every node's engine at once. The
stack is deployed with the production compose files and `python -m deploy`; every step
then runs under a steady client on the host that asks nginx's node at its bridge
address and counts answers per replica.
"""

from __future__ import annotations

import dataclasses
import json
import hashlib
import os
import subprocess  # nosec B404 - streams docker save into docker load
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from devstack import CommandFailed, docker, run
from devstack.harness import FAILURES
from devstack.dockerd import Dockerd, engine_answers
from devstack.swarm_nodes import Node, SwarmNodes, swarm_nodes
from e2e import images
from e2e.monitoring import intervals_overlay
from e2e.node_steps import Nodes, run_steps, shared_store
from e2e.scenario import Figures
from e2e.stack import create_secrets, save_logs, stack_environment

BuildImages = Callable[[Figures], images.BaseImages]


@contextmanager
def build_engine() -> Iterator[bool]:
    """The engine at DOCKER_HOST if one answers (False), else our own dockerd (True)."""
    if engine_answers():
        yield False
        return
    with Dockerd(memory=images.ENGINE_MEMORY):
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


def archive_of(made: list[str]) -> Path:
    """The cache's archive of the images of these sources."""
    return images.CACHE / f"nodes-images-{source_key(made)}.tar"


def cached_bases(archive: Path) -> images.BaseImages | None:
    """The base images the cached archive holds; None when it is not there."""
    bases = archive.with_suffix(".json")
    if archive.is_file() and bases.is_file():
        return images.BaseImages(**json.loads(bases.read_text()))
    return None


def build_all(build: BuildImages, figures: Figures) -> images.BaseImages:
    """Every image on the build engine: bases, the app's, the monitoring overlay's."""
    base = build(figures)
    started = time.monotonic()
    base = images.with_monitoring(base)
    figures.add(f"monitoring images: {time.monotonic() - started:.1f} s")
    return base


# How much of the `docker save` stream is read at a time.
CHUNK = 1 << 20


def saved_images(made: list[str], base: images.BaseImages) -> list[str]:
    """What the archive holds: the app's images and every base the stack runs."""
    return [*made, base.python, base.redis, base.nginx, *base.monitoring.values()]


def stream_images(names: list[str], nodes: list[Node], archive: Path) -> None:
    """One `docker save` of `names`, read once into every node's `docker load` at once
    and into the cache's archive (in place only once every load took it)."""
    images.CACHE.mkdir(parents=True, exist_ok=True)
    for old in images.CACHE.glob("nodes-images-*"):
        old.unlink()
    partial = archive.with_suffix(".partial")
    pipe = subprocess.PIPE
    loads = {
        node.hostname: subprocess.Popen(  # nosec B603 B607 - fixed argv
            ["docker", "--host", node.docker_host, "load", "--quiet"],
            stdin=pipe, stdout=subprocess.DEVNULL, stderr=pipe,
        )  # fmt: skip
        for node in nodes
    }
    save = subprocess.Popen(  # nosec B603 B607 - fixed argv
        ["docker", "save", *names], stdout=pipe, stderr=pipe
    )
    try:
        copy_to_all(save, list(loads.values()), partial)
        failed = [
            f"docker load on {host}: {said(load)}"
            for host, load in loads.items()
            if load.wait(timeout=600)
        ]
        if save.wait(timeout=600):
            failed.insert(0, f"docker save: {said(save)}")
        if failed:
            raise CommandFailed("; ".join(failed))
    finally:
        for process in (save, *loads.values()):
            if process.poll() is None:
                process.kill()
                process.wait()
    partial.rename(archive)


def copy_to_all(
    save: subprocess.Popen[bytes], loads: list[subprocess.Popen[bytes]], kept: Path
) -> None:
    """Copy the save's output into each load's input and the file `kept`; each
    load's input is closed at the end (or when it stopped reading: its error tells)."""
    assert save.stdout is not None  # nosec B101 - opened with stdout=PIPE
    inputs = [load.stdin for load in loads if load.stdin is not None]
    with kept.open("wb") as file:
        while chunk := save.stdout.read(CHUNK):
            file.write(chunk)
            for stream in list(inputs):
                try:
                    stream.write(chunk)
                except BrokenPipeError:
                    inputs.remove(stream)
    for stream in inputs:
        with suppress(BrokenPipeError):
            stream.close()


def said(process: subprocess.Popen[bytes]) -> str:
    """The last line a finished process wrote on stderr."""
    text = process.stderr.read().decode(errors="replace") if process.stderr else ""
    return (text.strip().splitlines() or [f"exit {process.returncode}"])[-1]


@dataclass
class Build:
    """Images being built on a host engine (ours when `own`) in a thread."""

    own: bool
    images: Future[images.BaseImages]


def start_build(stack: ExitStack, build: BuildImages, figures: Figures) -> Build:
    """A build engine (stopped when `stack` closes) and every image built on it in a
    thread, so that the nodes start meanwhile."""
    started = time.monotonic()
    own = stack.enter_context(build_engine())
    figures.add(f"build engine up: {time.monotonic() - started:.1f} s")
    pool = stack.enter_context(ThreadPoolExecutor(1))
    return Build(own, pool.submit(build_all, build, figures))


def fill_nodes(
    swarm: SwarmNodes,
    archive: Path,
    build: Build | None,
    made: list[str],
    figures: Figures,
) -> images.BaseImages:
    """Every image into every node at once: the built ones streamed (and kept in the
    cache), else the cached archive; the bases."""
    started = time.monotonic()
    if build is None:
        swarm.load_images(archive)
        base = cached_bases(archive)
        assert base is not None  # nosec B101 - the caller found the archive
        how = "loaded from the cache's archive"
    else:
        base = build.images.result()
        figures.add(
            f"the nodes waited for the build: {time.monotonic() - started:.1f} s"
        )
        started = time.monotonic()
        stream_images(saved_images(made, base), swarm.nodes, archive)
        archive.with_suffix(".json").write_text(json.dumps(dataclasses.asdict(base)))
        if not build.own:
            docker("image", "rm", *made, check=False)
        how = "docker save streamed into each node's docker load and the cache"
    figures.add(
        f"images into {len(swarm.nodes)} nodes at once ({how}): "
        f"{time.monotonic() - started:.1f} s, {archive.stat().st_size / 2**20:.0f} MiB"
    )
    return base


@contextmanager
def nodes_with_images(
    build: BuildImages,
    made: list[str],
    count: int,
    figures: Figures,
    keep_on: Callable[[], bool],
) -> Iterator[tuple[SwarmNodes, images.BaseImages]]:
    """The swarm's nodes, every image loaded into each; the images are built (when
    their sources changed) while the nodes start, and the build engine is gone."""
    archive = archive_of(made)
    with ExitStack() as building:
        building_images = None
        if cached_bases(archive) is None:
            building_images = start_build(building, build, figures)
        else:
            figures.add(
                f"images: the saved archive of unchanged sources, {archive.name}"
            )
        started = time.monotonic()
        with swarm_nodes(count, keep_on=keep_on) as swarm:
            figures.add(f"{count} nodes Ready: {time.monotonic() - started:.1f} s")
            base = fill_nodes(swarm, archive, building_images, made, figures)
            started = time.monotonic()
            building.close()
            if building_images is not None:
                figures.add(f"build engine stopped: {time.monotonic() - started:.1f} s")
            yield swarm, base


def deploy_nodes(
    build: BuildImages, made: list[str], count: int, figures: Figures, charts: Path
) -> None:
    """Images, nodes, secrets, then every step (a chart of each in `charts`); logs
    kept when a step fails."""
    failed = True
    previous_host = os.environ.get("DOCKER_HOST")
    try:
        ready = nodes_with_images(build, made, count, figures, keep_on=lambda: failed)
        with ready as (swarm, base), tempfile.TemporaryDirectory() as config:
            os.environ["DOCKER_HOST"] = swarm.manager.docker_host
            nodes = Nodes.of(swarm, charts)
            stack_environment(base.redis, base.nginx, 80)
            # The monitoring overlay's images, the e2e's Prometheus config and the
            # replicas' shared store (node_steps deploys them).
            os.environ.update(base.monitoring)
            os.environ.update(intervals_overlay(Path(config)))
            os.environ.update(shared_store(Path(config)))
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
