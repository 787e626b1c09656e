"""`python -m e2e` (run by `nox -s e2e`): the whole swarm proof.

1 engine (DOCKER_HOST or our own dockerd) in swarm mode; 2 base images (official or
Debian stand-ins); 3 images A, B and a broken one; then the steps of `steps()` in
order, each under steady load where it changes the stack; last, teardown, always, with
the services' logs kept when a step failed.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable

from devstack import DockerEngine, free_port
from devstack.harness import FAILURES, stop_on_signals
from e2e import images
from e2e.cancelled import step_cancelled_deploy
from e2e.deploys import (
    remove_changed_template,
    step_edge_change,
    step_nginx_change,
    step_rerun,
)
from e2e.failed_deploys import (
    step_partial_stack_deploy,
    step_unready_after_swarm_rollback,
)
from e2e.hardening import step_hardening
from e2e.operator import step_lock_and_rollback
from e2e.scale import step_scale
from e2e.seed_commands import say_seed_commands
from e2e.scenario import (
    VERSION_A,
    VERSION_B,
    Figures,
    step_checks,
    step_deploy,
    step_rollback,
    step_rolling_update,
)
from e2e.stack import (
    create_secrets,
    refuse_foreign_stack,
    remove_stack,
    save_logs,
    stack_environment,
)

IMAGE_A = "prework-flask-app:e2e-a"
IMAGE_B = "prework-flask-app:e2e-b"
IMAGE_BROKEN = "prework-flask-app:e2e-broken"


# What the image and the stack are made of besides this folder's own files.
REQUIRED_FILES = (
    "app/__init__.py",
    "gunicorn.conf.py",
    "nginx/edge.env",
    "nginx/template.env",
    "nginx/templates/default.conf.template",
    "nginx/templates/edge.conf.template",
)


def missing_files() -> list[str]:
    """Project files the image or the stack needs that are not in the tree."""
    return [name for name in REQUIRED_FILES if not (images.ROOT / name).is_file()]


def build_images(figures: Figures) -> images.BaseImages:
    """Steps 2 and 3: the base images, then the app at versions A and B, and broken."""
    started = time.monotonic()
    base = images.base_images()
    kind = "Debian stand-ins" if base.standins else "official, pulled"
    figures.add(f"base images ({kind}): {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    images.build_app(IMAGE_A, VERSION_A, base)
    images.build_app(IMAGE_B, VERSION_B, base)
    images.build_broken(IMAGE_BROKEN, IMAGE_B)
    figures.add(f"app images A, B, broken: {time.monotonic() - started:.1f} s")
    return base


Step = Callable[[str, Figures], None]


def steps() -> list[Step]:
    """The scenario after the images, in order; each takes the base URL and Figures.

    Add a step here (a function in its own module) to extend the scenario.
    """
    return [
        lambda url, figures: step_deploy(IMAGE_A, f"{url}/", figures),
        lambda url, figures: step_checks(url, IMAGE_A, figures),
        step_hardening,
        lambda url, figures: step_rolling_update(IMAGE_B, url, figures),
        lambda url, figures: step_rerun(IMAGE_B, url, figures),
        lambda url, figures: step_rollback(IMAGE_BROKEN, IMAGE_B, url, figures),
        # After Swarm's rollback: its UpdateStatus must not fool the next deploy.
        lambda url, figures: step_unready_after_swarm_rollback(IMAGE_B, url, figures),
        lambda url, figures: step_lock_and_rollback(IMAGE_B, url, figures),
        # As GitHub cancels a job: the swarm must stay on B.
        lambda url, figures: step_cancelled_deploy(
            IMAGE_A, VERSION_A, VERSION_B, url, figures
        ),
        step_scale,
        step_nginx_change,
        lambda url, figures: step_partial_stack_deploy(IMAGE_A, url, figures),
        # Last: the rare change with a gap in the published port.
        step_edge_change,
    ]


def run_stack(base: images.BaseImages, own_engine: bool, figures: Figures) -> None:
    """The steps on the engine, then teardown."""
    port = int(os.environ.get("PREWORK_HTTP_PORT") or free_port())
    url = f"http://127.0.0.1:{port}"
    stack_environment(base.redis, base.nginx, port)
    failed = True
    try:
        create_secrets()
        for step in steps():
            step(url, figures)
        failed = False
    finally:
        if failed:
            print(f"[e2e] services' logs kept in {save_logs()}", flush=True)
        made = [IMAGE_A, IMAGE_B, IMAGE_BROKEN]
        if base.standins:
            made += [base.python, base.redis, base.nginx, images.DEBIAN_IMAGE]
        remove_stack(made, remove_images=not own_engine)
        remove_changed_template()


USAGE = "usage: python -m e2e [--nodes 1|3|4|5]"


def node_count(argv: list[str]) -> int | None:
    """`--nodes N` (default 1: one engine); None, with one line said, when bad."""
    if not argv:
        return 1
    if len(argv) == 2 and argv[0] == "--nodes" and argv[1] in ("1", "3", "4", "5"):
        return int(argv[1])
    print(USAGE, file=sys.stderr)
    return None


def asks_for_help(argv: list[str]) -> bool:
    """`--help` / `-h`: the usage and what the e2e does, on stdout (exit 0)."""
    if argv not in (["--help"], ["-h"]):
        return False
    print(f"{USAGE}\n\n{__doc__}")
    return True


def main(argv: list[str] | None = None) -> int:
    """Run every step; 0 when all held, 1 (with the reason) when one did not."""
    argv = sys.argv[1:] if argv is None else argv
    if asks_for_help(argv):
        return 0
    nodes = node_count(argv)
    if nodes is None:
        return 2
    say_seed_commands()
    stop_on_signals()
    started = time.monotonic()
    figures = Figures()
    missing = missing_files()
    if missing:
        print(f"[e2e] FAILED: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    if nodes > 1:
        # Several namespaced engines in one swarm (e2e/nodes.py).
        from e2e.nodes import main_nodes

        return main_nodes(build_images, [IMAGE_A, IMAGE_B, IMAGE_BROKEN], nodes)
    try:
        with DockerEngine(memory=images.ENGINE_MEMORY) as engine:
            own_engine = engine.started
            refuse_foreign_stack()
            base = build_images(figures)
            run_stack(base, own_engine, figures)
    except FAILURES as error:
        traceback.print_exc()
        print(f"[e2e] FAILED: {error}", file=sys.stderr)
        return 1
    figures.add(f"total: {time.monotonic() - started:.1f} s")
    print("[e2e] passed:\n  " + "\n  ".join(figures.lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
