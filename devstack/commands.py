"""Commands run to completion: output captured, a failure explained in one exception."""

from __future__ import annotations

import subprocess  # nosec B404 # runs docker and other fixed tools
from collections.abc import Mapping, Sequence
from pathlib import Path


class CommandFailed(RuntimeError):
    """A command exited non-zero; the message holds its last lines of output."""


def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600.0,
    check: bool = True,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capturing text; raise CommandFailed when it fails and `check`.

    `capture=False` leaves its output on this process's terminal (a foreground run).
    """
    result = subprocess.run(  # nosec B603 # argv lists built by the callers
        list(argv),
        input=stdin,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        capture_output=capture,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        said = (result.stdout or "") + (result.stderr or "")
        tail = "\n".join(said.strip().splitlines()[-20:])
        raise CommandFailed(
            f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{tail}"
        )
    return result


def foreground(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run argv on this terminal until it exits; its exit status.

    Ctrl-C reaches the child too (one process group), so on KeyboardInterrupt this
    waits for the child's own shutdown: subprocess.run would SIGKILL it after 0.25 s,
    leaving its children (gunicorn's workers) behind.
    """
    with subprocess.Popen(  # nosec B603 # argv lists built by the callers
        list(argv), cwd=cwd, env=dict(env) if env is not None else None
    ) as process:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue


def docker(*args: str, timeout: float = 600.0, check: bool = True) -> str:
    """`docker ARGS` against DOCKER_HOST; its stdout."""
    return run(["docker", *args], timeout=timeout, check=check).stdout
