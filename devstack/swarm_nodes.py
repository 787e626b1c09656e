"""A multi-node Docker Swarm on this one machine, as a context manager.

Each node is a network namespace with its own hostname (UTS namespace) and its own
dockerd (data root, exec root, pidfile, socket, cgroup parent), joined by veths to one
bridge in the host namespace on a private /24 that nothing else here routes. Node 1
initialises the swarm; the others join it. Everything made here (processes, mounts,
cgroups, namespaces, the bridge, its veths and the FORWARD rule) is removed on exit,
also after a failure or Ctrl-C. The engines live in their own namespaces: they share
no docker_gwbridge and no port 2377 with an engine in the host namespace.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from devstack.binaries import find_binary
from devstack.commands import CommandFailed, run
from devstack.dockerd import Dockerd, unmount_under
from devstack.waiting import wait_until

# Candidate subnets for the bridge: the first that overlaps nothing here wins.
SUBNETS = tuple(f"10.213.{third}.0/24" for third in range(77, 87))
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
ENGINE_START_TIMEOUT = 60.0
ENGINE_STOP_TIMEOUT = 30.0
JOIN_TIMEOUT = 60.0
# The engines' roots live in memory: loading images is faster, and removing them is a
# umount instead of deleting gigabytes of layers (slow on a discarding disk). Pages are
# used only as written; this caps them.
ROOT_TMPFS_SIZE = "12g"
# sh -c SCRIPT HOSTNAME NETNS ARGV...: the hostname set, then ARGV in the namespace.
ENTER_NODE = (
    'hostname "$0" && netns="$1" && shift && exec nsenter --net="$netns" -- "$@"'
)


@dataclass
class Node:
    """One swarm node: its namespace, address, engine root and dockerd."""

    hostname: str
    netns: str
    veth: str
    address: str
    root: Path
    cgroup: str
    engine: NodeDockerd | None = None

    @property
    def docker_host(self) -> str:
        """DOCKER_HOST of this node's engine."""
        return f"unix://{self.root / 'docker.sock'}"

    def docker(
        self,
        *args: str,
        stdin: str | None = None,
        timeout: float = 600.0,
        check: bool = True,
    ) -> str:
        """`docker ARGS` against this node's engine; its stdout."""
        argv = ["docker", "--host", self.docker_host, *args]
        return run(argv, stdin=stdin, timeout=timeout, check=check).stdout

    def answers(self) -> bool:
        """True when this node's engine answers `docker info`."""
        probe = ["docker", "--host", self.docker_host, "info", "--format", "{{.ID}}"]
        return run(probe, check=False, timeout=20).returncode == 0


@dataclass
class SwarmNodes:
    """The running nodes; node 1 (and the next `managers - 1`) are managers."""

    nodes: list[Node]
    bridge: str
    gateway: str
    managers: int
    ip: str = field(repr=False)

    @property
    def manager(self) -> Node:
        """The node that initialised the swarm (the leader at start)."""
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        """The nodes that joined as workers."""
        return self.nodes[self.managers :]

    def node(self, hostname: str) -> Node:
        """The node with this hostname."""
        for node in self.nodes:
            if node.hostname == hostname:
                return node
        raise KeyError(hostname)

    def node_states(self) -> dict[str, tuple[str, str]]:
        """Hostname -> (status, availability) as the manager sees them."""
        table = self.manager.docker(
            "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}"
        )
        states = {}
        for line in table.splitlines():
            hostname, status, availability = line.split()
            states[hostname] = (status, availability)
        return states

    def all_ready(self) -> bool:
        """True when the manager sees every node Ready."""
        states = self.node_states()
        return all(
            states.get(node.hostname, ("", ""))[0] == "Ready" for node in self.nodes
        )

    def load_images(self, archive: Path, nodes: list[Node] | None = None) -> None:
        """`docker load` a `docker save` archive into every node's engine at once."""
        targets = nodes or self.nodes
        with ThreadPoolExecutor(len(targets)) as pool:
            loads = [
                pool.submit(node.docker, "load", "--quiet", "--input", str(archive))
                for node in targets
            ]
        for load in loads:
            load.result()

    def cut_link(self, node: Node) -> None:
        """Take the node off the network at once, as a pulled cable would."""
        run([self.ip, "link", "set", node.veth, "down"])

    def restore_link(self, node: Node) -> None:
        """Put a cut node back on the network."""
        run([self.ip, "link", "set", node.veth, "up"])


def used_networks(ip: str) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network routed or addressed on this machine (host namespace)."""
    found: list[ipaddress.IPv4Network] = []
    for table in (["-4", "-j", "route", "show", "table", "all"], ["-4", "-j", "addr"]):
        for entry in json.loads(run([ip, *table]).stdout or "[]"):
            prefixes = [entry.get("dst", "")] + [
                f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])
            ]
            for prefix in prefixes:
                if prefix and prefix[0].isdigit():
                    found.append(ipaddress.IPv4Network(prefix, strict=False))
    return found


def free_subnet(ip: str) -> ipaddress.IPv4Network:
    """The first candidate /24 overlapping nothing on this machine."""
    used = used_networks(ip)
    for candidate in map(ipaddress.IPv4Network, SUBNETS):
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise CommandFailed(f"every candidate subnet is in use: {', '.join(SUBNETS)}")


class NodeDockerd(Dockerd):
    """A node's dockerd: in the node's network namespace, with its own hostname (UTS
    namespace) and cgroup parent, its roots in the node's root. It leaves DOCKER_HOST
    and the host namespace's bridges alone."""

    start_timeout = ENGINE_START_TIMEOUT
    stop_timeout = ENGINE_STOP_TIMEOUT

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def make_folder(self) -> Path:
        self.node.root.mkdir(parents=True, exist_ok=True)
        return self.node.root

    def command(self, folder: Path) -> list[str]:
        engine = [
            self.binary,
            *self.flags(folder),
            f"--cgroup-parent=/{self.node.cgroup}",
            # Containers get a few seconds to stop when the engine goes (thrown away).
            "--shutdown-timeout=5",
        ]
        # `ip netns exec` would remount /sys, and dockerd then misses the devices
        # cgroup; nsenter joins only the network namespace. unshare gives the hostname.
        return [
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            ENTER_NODE,
            self.node.hostname,
            str(NETNS_DIR / self.node.netns),
            *engine,
        ]

    def prepare(self, folder: Path) -> None:
        self.log_path = folder / "dockerd.log"

    def ready(self) -> bool:
        return self.node.answers()

    def cleanup(self, folder: Path) -> None:
        """Unmount only: release_nodes removes the root once nothing is left in it."""
        unmount_under(folder)


def start_engine(node: Node) -> None:
    """Start the node's dockerd and wait until it answers."""
    node.engine = NodeDockerd(node).start()


def stop_engines(nodes: list[Node]) -> None:
    """SIGTERM every node's dockerd at once (they stop their containers in parallel),
    then stop each (SIGKILL for any that lingers)."""
    engines = [node.engine for node in nodes if node.engine is not None]
    for engine in engines:
        if engine.process is not None and engine.process.poll() is None:
            engine.process.send_signal(signal.SIGTERM)
    for engine in engines:
        engine.stop()


def netns_pids(ip: str, netns: str) -> list[int]:
    """Processes still in a namespace we made (containerd, shims, proxies)."""
    listed = run([ip, "netns", "pids", netns], check=False).stdout.split()
    return [int(pid) for pid in listed if pid.isdigit()]


def cgroup_dirs(name: str) -> list[Path]:
    """Our cgroup parent's directories in every v1 controller (or v2), deepest first."""
    tops = [path / name for path in CGROUP_ROOT.iterdir() if (path / name).is_dir()]
    if (CGROUP_ROOT / name).is_dir():
        tops.append(CGROUP_ROOT / name)
    found = [sub for top in tops for sub in top.rglob("*") if sub.is_dir()] + tops
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def cgroup_pids(name: str) -> list[int]:
    """Processes in our cgroup parent (the containers of our engines)."""
    pids: set[int] = set()
    for directory in cgroup_dirs(name):
        procs = directory / "cgroup.procs"
        if procs.is_file():
            pids.update(int(pid) for pid in procs.read_text().split())
    return sorted(pids)


def kill_all(pids: list[int]) -> None:
    """SIGKILL processes that are ours by where they live (our netns or cgroup)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def release_nodes(ip: str, nodes: list[Node]) -> None:
    """Everything the engines left behind: processes, mounts, cgroups, roots."""
    stop_engines(nodes)
    for node in nodes:
        for _ in range(3):
            leftovers = netns_pids(ip, node.netns) + cgroup_pids(node.cgroup)
            if not leftovers:
                break
            kill_all(leftovers)
            wait_until(
                lambda: not any(Path(f"/proc/{pid}").exists() for pid in leftovers),
                10,
                f"processes of {node.hostname} to end",
            )
        unmount_under(node.root)
        for directory in cgroup_dirs(node.cgroup):
            try:
                directory.rmdir()
            except OSError:
                pass
        shutil.rmtree(node.root, ignore_errors=True)


def add_forward_rule(stack: ExitStack, iptables: str, bridge: str) -> None:
    """Bridged traffic between our nodes passes FORWARD (br_netfilter may filter it,
    and an engine in the host namespace sets the FORWARD policy to DROP)."""
    rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
    rule += ["-m", "comment", "--comment", f"prework swarm_nodes {bridge}"]
    run([iptables, "-I", *rule])
    stack.callback(run, [iptables, "-D", *rule], check=False)


def add_bridge(
    stack: ExitStack, ip: str, bridge: str, gateway: str, prefix: int
) -> None:
    """The bridge in the host namespace, with the host's address on it."""
    run([ip, "link", "add", bridge, "type", "bridge"])
    stack.callback(run, [ip, "link", "delete", bridge], check=False)
    run([ip, "addr", "add", f"{gateway}/{prefix}", "dev", bridge])
    run([ip, "link", "set", bridge, "up"])


def add_namespace(
    stack: ExitStack, ip: str, node: Node, bridge: str, prefix: int
) -> None:
    """The node's namespace, linked to the bridge by a veth, with its address.

    No default route: the node reaches only the bridge's subnet (the other nodes and
    the host's address on the bridge), nothing beyond this machine.
    """
    run([ip, "netns", "add", node.netns])
    stack.callback(run, [ip, "netns", "delete", node.netns], check=False)
    # The peer is made inside the namespace: the host may have an eth0 of its own.
    peer = ["peer", "name", "eth0", "netns", node.netns]
    run([ip, "link", "add", node.veth, "type", "veth", *peer])
    stack.callback(run, [ip, "link", "delete", node.veth], check=False)
    run([ip, "link", "set", node.veth, "master", bridge, "up"])
    inside = [ip, "-n", node.netns]
    run([*inside, "addr", "add", f"{node.address}/{prefix}", "dev", "eth0"])
    run([*inside, "link", "set", "eth0", "up"])
    run([*inside, "link", "set", "lo", "up"])


def form_swarm(swarm: SwarmNodes) -> None:
    """swarm init on node 1; managers then workers join with their tokens."""
    first = swarm.manager
    first.docker("swarm", "init", "--advertise-addr", first.address)
    tokens = {
        role: first.docker("swarm", "join-token", "--quiet", role).strip()
        for role in ("manager", "worker")
    }
    for index, node in enumerate(swarm.nodes[1:], start=1):
        role = "manager" if index < swarm.managers else "worker"
        node.docker(
            "swarm",
            "join",
            "--token",
            tokens[role],
            "--advertise-addr",
            node.address,
            f"{first.address}:2377",
            timeout=JOIN_TIMEOUT,
        )
    wait_until(swarm.all_ready, JOIN_TIMEOUT, "every node Ready")


def make_nodes(
    count: int, subnet: ipaddress.IPv4Network, tag: str, root: Path
) -> list[Node]:
    """The nodes' names and addresses: node N at the subnet's host number 10+N."""
    hosts = list(subnet.hosts())
    return [
        Node(
            hostname=f"node{number}",
            netns=f"prework-{tag}-n{number}",
            veth=f"pw{tag}n{number}",
            address=str(hosts[9 + number]),
            root=root / f"n{number}",
            cgroup=f"prework-{tag}-node{number}",
        )
        for number in range(1, count + 1)
    ]


@contextmanager
def swarm_nodes(
    count: int = 3, managers: int = 1, keep_on: Callable[[], bool] | None = None
) -> Iterator[SwarmNodes]:
    """`count` nodes in one swarm, `managers` of them managers; all removed on exit.

    `keep_on`, when given and true at exit, leaves the engines' logs in a folder that
    outlives the run (printed), for a failed run's post-mortem.
    """
    if not 1 <= managers <= count:
        raise ValueError(f"managers must be in 1..{count}, not {managers}")
    ip = find_binary("ip", "iproute2")
    iptables = find_binary("iptables", "iptables")
    find_binary("dockerd", "docker.io")
    for binary, package in (("unshare", "util-linux"), ("nsenter", "util-linux")):
        find_binary(binary, package)
    tag = secrets.token_hex(2)  # 4 hex digits: names stay within IFNAMSIZ (15)
    subnet = free_subnet(ip)
    gateway = str(next(subnet.hosts()))
    # Short path: the exec roots hold unix sockets (paths limited to 108 bytes).
    root = Path(tempfile.mkdtemp(prefix="pwk-"))
    nodes = make_nodes(count, subnet, tag, root)
    swarm = SwarmNodes(nodes, f"pw{tag}br", gateway, managers, ip)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        run(["mount", "-t", "tmpfs", "-o", f"size={ROOT_TMPFS_SIZE},mode=0700",
             "prework-nodes", str(root)])  # fmt: skip
        stack.callback(run, ["umount", "--lazy", str(root)], check=False)
        add_forward_rule(stack, iptables, swarm.bridge)
        add_bridge(stack, ip, swarm.bridge, gateway, subnet.prefixlen)
        for node in nodes:
            add_namespace(stack, ip, node, swarm.bridge, subnet.prefixlen)
        for node in nodes:
            node.root.mkdir(parents=True)
        stack.callback(release_nodes, ip, nodes)
        stack.callback(keep_logs, nodes, keep_on)
        for node in nodes:
            start_engine(node)
        form_swarm(swarm)
        yield swarm


def keep_logs(nodes: list[Node], keep_on: Callable[[], bool] | None) -> None:
    """Copy each engine's log out of its root before the root goes, when asked."""
    if keep_on is None or not keep_on():
        return
    folder = Path(tempfile.mkdtemp(prefix="prework-nodes-logs-"))
    for node in nodes:
        log = node.root / "dockerd.log"
        if log.is_file():
            shutil.copy(log, folder / f"{node.hostname}-dockerd.log")
    print(f"[nodes] engines' logs kept in {folder}", flush=True)
