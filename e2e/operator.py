"""The deploy as an operator's tool on the real swarm: `python -m deploy rollback`
holds the stack's deploy lock, so a second deploy refuses at once (naming the holder)
or, with --lock-wait, waits for it; `history` then lists both. Under steady load.
"""

from __future__ import annotations

import subprocess  # nosec B404 - runs `python -m deploy` as an operator does
import sys
import time

from deploy import lock
from devstack import run, wait_until
from e2e import images
from e2e.deploys import finish_load, started_load
from e2e.scenario import (
    TIMEOUT,
    VERSION_A,
    VERSION_B,
    Figures,
    assert_no_failures,
    deploy_cli,
    deploy_command,
    replicas_report,
)
from devstack.harness import STACK


def step_lock_and_rollback(image_b: str, base: str, figures: Figures) -> None:
    """A rollback by verb to A; meanwhile B refused, then B after waiting."""
    load = started_load(base)
    try:
        first = subprocess.Popen(  # nosec B603 - fixed argv
            [*deploy_command("rollback", f"{base}/"), "--actor", "e2e-first"],
            cwd=images.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: lock.current_holder(STACK) is not None, 60, "lock")
            second = ("--actor", "e2e-second")
            refused = deploy_cli(image_b, VERSION_B, f"{base}/", extra=second)
            started = time.monotonic()
            waited = deploy_cli(
                image_b, VERSION_B, f"{base}/", extra=(*second, "--lock-wait", "300")
            )
            took = time.monotonic() - started
        finally:
            out, err = first.communicate(timeout=TIMEOUT + 60)
    finally:
        finish_load(load)
    print(f"[e2e] rollback said:\n{out}{err}".rstrip(), flush=True)
    assert first.returncode == 0, f"rollback by verb failed: {err}"
    assert f"rollback to {VERSION_A}" in out, out
    assert refused.returncode == 1, f"a second deploy ran beside the first: {refused}"
    assert f"held by e2e-first deploying {VERSION_A}" in refused.stderr, refused
    assert waited.returncode == 0, f"the waiting deploy failed: {waited.stderr}"
    history = [
        sys.executable,
        "-m",
        "deploy",
        "history",
        "--stack",
        STACK,
        "--last",
        "2",
    ]
    past = run(history, cwd=images.ROOT).stdout.splitlines()
    print("[e2e] python -m deploy history --last 2:\n" + "\n".join(past), flush=True)
    said = [line.split()[1:4] for line in past]
    assert said == [
        [VERSION_B, "verified", "e2e-second"],
        [VERSION_A, "verified", "e2e-first"],
    ], past
    figures.add(
        f"rollback by verb to A, a second deploy refused naming its holder, then B "
        f"after waiting for the lock: {took:.1f} s"
    )
    assert_no_failures("load during the locked deploys", load.report, figures)
    replicas_report(VERSION_B, f"{base}/")
