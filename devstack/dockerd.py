"""An engine in swarm mode: the one at DOCKER_HOST, else a dockerd of our own.

Only what this module starts is stopped: its dockerd (and that engine's swarm) or, on an
engine that was already running, the swarm it initialised. Our own dockerd keeps its
data, exec root and socket in its temporary folder and makes no default bridge.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Self

from devstack.binaries import find_binary
from devstack.commands import docker, run
from devstack.processes import Service, ServiceProcess

# Swarm's bridge to the host for published ports and egress; made by dockerd on demand.
GATEWAY_BRIDGE = "docker_gwbridge"
# The machine's Docker lock: two engines in the host network namespace both want
# docker_gwbridge and swarm's port 2377, so whoever starts one (the e2e, the rehearsal,
# a benchmark) holds this lock while it runs. Engines in namespaces of their own
# (devstack.swarm_nodes) need none. Don't wrap a run in `flock` on the same file too:
# it takes the lock itself, and would wait for the wrapper forever.
LOCK_VARIABLE = "PREWORK_DOCKER_LOCK"
DEFAULT_LOCK = "/tmp/prework-docker.lock"  # nosec B108 - the machine's shared lock


class DockerLockHeld(RuntimeError):
    """Another run holds the machine's Docker lock (raised only when not waiting)."""


def take_docker_lock(wait: bool = True) -> IO[str]:
    """Wait for the machine's Docker lock; it is held until the handle is closed.

    With wait=False, DockerLockHeld instead of waiting (a test never waits for it).
    """
    path = os.environ.get(LOCK_VARIABLE, DEFAULT_LOCK)
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not wait:
            handle.close()
            raise DockerLockHeld(f"the machine's Docker lock {path} is held") from None
        print(f"[devstack] waiting for the Docker lock {path}", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def engine_answers() -> bool:
    """True when `docker info` reaches an engine at the current DOCKER_HOST."""
    probe = ["docker", "info", "--format", "{{.ServerVersion}}"]
    return run(probe, check=False, timeout=20).returncode == 0


def swarm_state() -> str:
    """The engine's swarm state: inactive, pending, active, ..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def remove_stale_vxlans() -> list[str]:
    """Delete overlay VXLAN interfaces a dead engine left in the host namespace.

    A live engine keeps its overlay's `vx-*` interface inside the network's own
    namespace; one left down in the host namespace is debris of an engine that died
    half-way, and makes the next engine's tasks fail with "error creating vxlan
    interface: file exists". Called with the Docker lock held: no other engine of ours
    runs in this namespace then. The names removed.
    """
    ip = find_binary("ip", "iproute2")
    listed = run([ip, "-j", "-d", "link", "show", "type", "vxlan"], check=False)
    stale = [
        link["ifname"]
        for link in json.loads(listed.stdout or "[]")
        if link.get("ifname", "").startswith("vx-") and link.get("operstate") == "DOWN"
    ]
    for name in stale:
        run([ip, "link", "delete", name], check=False)
    return stale


def unmount_under(root: Path) -> None:
    """Lazily unmount what a dockerd left mounted under its root (overlays, netns)."""
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(f"{root}/")
    ]
    for mount in sorted(mounts, reverse=True):
        run(["umount", "--lazy", mount], check=False)


class Dockerd(ServiceProcess):
    """dockerd with its own data root, exec root and socket; DOCKER_HOST points at it.

    While it runs, DOCKER_HOST (in os.environ) is its socket; the previous value comes
    back on stop. devstack.swarm_nodes runs one per node, in the node's namespaces.
    """

    name = "dockerd"
    binary_name = "dockerd"
    package = "docker.io"
    start_timeout = 60.0
    stop_timeout = 60.0

    def __init__(self, wait_for_lock: bool = True, memory: str | None = None) -> None:
        """`memory`, a tmpfs size (e.g. "8g"), keeps the data root in memory: layers
        are written faster, and removing them is an unmount instead of deleting
        gigabytes from the disk."""
        super().__init__()
        self.wait_for_lock = wait_for_lock
        self.memory = memory
        self.previous_host: str | None = None
        self.had_bridge = False
        self.lock: IO[str] | None = None

    def flags(self, folder: Path) -> list[str]:
        """The engine's roots, pidfile and socket in `folder`, and no default bridge."""
        # Short path (mkdtemp under /tmp): the exec root holds unix sockets, whose
        # paths are limited to 108 bytes.
        return [
            f"--data-root={folder / 'data'}",
            f"--exec-root={folder / 'exec'}",
            f"--pidfile={folder / 'dockerd.pid'}",
            f"--host=unix://{folder / 'docker.sock'}",
            # No default bridge: builds use the host network, the stack uses overlays;
            # so this engine never competes for docker0 with another one.
            "--bridge=none",
        ]

    def command(self, folder: Path) -> list[str]:
        return [self.binary, *self.flags(folder)]

    def prepare(self, folder: Path) -> None:
        self.lock = take_docker_lock(self.wait_for_lock)
        if self.memory is not None:
            data = folder / "data"
            data.mkdir()
            run(["mount", "-t", "tmpfs", "-o", f"size={self.memory},mode=0700",
                 "prework-dockerd", str(data)])  # fmt: skip
        removed = remove_stale_vxlans()
        if removed:
            print(f"[devstack] removed dead engines' {', '.join(removed)}", flush=True)
        self.log_path = folder / "dockerd.log"
        self.had_bridge = Path("/sys/class/net", GATEWAY_BRIDGE).exists()
        self.previous_host = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = f"unix://{folder / 'docker.sock'}"

    def ready(self) -> bool:
        return engine_answers()

    def cleanup(self, folder: Path) -> None:
        """Release what a stopped dockerd leaves: mounts in its root, the gwbridge."""
        unmount_under(folder)
        super().cleanup(folder)
        if self.lock is None:
            # The lock was never taken (held elsewhere, or Ctrl-C while waiting): the
            # bridge and DOCKER_HOST are another run's, untouched by this one.
            return
        if not self.had_bridge:
            ip = find_binary("ip", "iproute2")
            run([ip, "link", "delete", GATEWAY_BRIDGE], check=False)
        if self.previous_host is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = self.previous_host
        self.lock.close()  # releases the Docker lock
        self.lock = None


class DockerEngine(Service):
    """An engine in swarm mode; `started` says whether this run started dockerd itself.

    The engine at DOCKER_HOST is reused when one answers; else a `Dockerd` of our own.
    The swarm is initialised (on 127.0.0.1) unless active, and left on exit if it was.
    """

    def __init__(self, memory: str | None = None) -> None:
        """`memory`: our own dockerd's data root in a tmpfs of that size (Dockerd)."""
        self.dockerd: Dockerd | None = None
        self.initialised = False
        self.memory = memory

    @property
    def started(self) -> bool:
        """True when this run started its own dockerd."""
        return self.dockerd is not None

    def start(self) -> Self:
        """Reach or start an engine, then make it a swarm manager."""
        if not engine_answers():
            self.dockerd = Dockerd(memory=self.memory).start()
        try:
            self.initialised = swarm_state() != "active"
            if self.initialised:
                docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Leave the swarm this run made; stop the dockerd it started."""
        if self.initialised:
            docker("swarm", "leave", "--force", check=False)
            self.initialised = False
        if self.dockerd is not None:
            self.dockerd.stop()
            self.dockerd = None
