"""An engine in swarm mode for the e2e: the one at DOCKER_HOST, else our own dockerd.

Only what this module starts is stopped: its dockerd (and that engine's swarm) or, on an
engine that was already running, the swarm it initialised.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess  # nosec B404 - starts dockerd
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.commands import docker, require_binary, run
from tests.support import wait_until

# Swarm's bridge to the host for published ports and egress; made by dockerd on demand.
GATEWAY_BRIDGE = "docker_gwbridge"


def engine_answers() -> bool:
    """True when `docker info` reaches an engine at the current DOCKER_HOST."""
    probe = ["docker", "info", "--format", "{{.ServerVersion}}"]
    return run(probe, check=False, timeout=20).returncode == 0


@contextmanager
def own_dockerd() -> Iterator[Path]:
    """Start dockerd with its own data root, exec root and socket; stop it after."""
    dockerd = require_binary("dockerd", "docker.io")
    # Short path: the exec root holds unix sockets (paths limited to 108 bytes).
    root = Path(tempfile.mkdtemp(prefix="prework-dockerd-"))
    socket = root / "docker.sock"
    log = (root / "dockerd.log").open("wb")
    had_bridge = Path("/sys/class/net", GATEWAY_BRIDGE).exists()
    process = subprocess.Popen(  # nosec B603 - fixed argv
        [
            dockerd,
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{socket}",
            # No default bridge: builds use the host network, the stack uses overlays;
            # so this engine never competes for docker0 with another one.
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous_host = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = f"unix://{socket}"
    try:
        wait_until(lambda: process.poll() is None and engine_answers(), 60, "dockerd")
        yield root
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        release_leftovers(root, created_bridge=not had_bridge)
        if previous_host is None:
            del os.environ["DOCKER_HOST"]
        else:
            os.environ["DOCKER_HOST"] = previous_host


def release_leftovers(root: Path, created_bridge: bool) -> None:
    """What a stopped dockerd leaves: namespace mounts under its root, the gwbridge."""
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(f"{root}/")
    ]
    for mount in sorted(mounts, reverse=True):
        run(["umount", "--lazy", mount], check=False)
    shutil.rmtree(root, ignore_errors=True)
    if created_bridge:
        run(
            [require_binary("ip", "iproute2"), "link", "delete", GATEWAY_BRIDGE],
            check=False,
        )


def swarm_state() -> str:
    """The engine's swarm state: inactive, pending, active, ..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


@contextmanager
def swarm_engine() -> Iterator[bool]:
    """An engine in swarm mode; yields True when this run started the engine itself."""
    with _engine() as started:
        initialised = swarm_state() != "active"
        if initialised:
            docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            yield started
        finally:
            if initialised:
                docker("swarm", "leave", "--force", check=False)


@contextmanager
def _engine() -> Iterator[bool]:
    """The engine at DOCKER_HOST if one answers (False), else our own dockerd (True)."""
    if engine_answers():
        yield False
        return
    with own_dockerd():
        yield True
