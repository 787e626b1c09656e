"""Every running task of the stack is hardened as docker-compose.yml says (issue 27),
and the monitoring overlay's as that file says.

The expected values are docker-compose.yml's own (the one home of the policy; a unit
test proves `docker stack config` of every documented file combination keeps them);
what is checked is each running container as its engine reports it (`docker inspect`)
and as its kernel does (/proc/1/status, the secrets' modes), so a compose key that
`docker stack deploy` dropped on the way would show here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from devstack import docker
from e2e import images
from e2e.scenario import Figures
from devstack.harness import STACK

if TYPE_CHECKING:
    from e2e.node_steps import Nodes

# `docker ARGS` against the engine of one node, returning stdout.
Engine = Callable[..., str]
# The services whose root file system the e2e tries to write to (issue 27, point 6).
WRITE_PROBED = ("web", "nginx")
WRITE_PROBE = "touch /.prework-write-probe 2>&1 || true"
SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.I)


def size_bytes(size: str) -> int:
    """A compose memory size (256M, 1G, or bytes as `docker stack config` says)."""
    match = SIZE.match(str(size))
    assert match, size
    unit = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()]
    return int(float(match.group(1)) * unit)


def nano_cpus(cpus: str) -> int:
    """A compose CPU count ("0.50") in the engine's nano CPUs."""
    return round(float(cpus) * 1e9)


@dataclass(frozen=True)
class Policy:
    """One service's hardening, as docker-compose.yml states it."""

    cap_add: tuple[str, ...]
    user: str | None
    limits: dict[str, Any]
    reservations: dict[str, Any]
    nofile: int | None
    tmpfs: tuple[str, ...]
    # Secret file name -> (uid, gid, mode).
    secrets: dict[str, tuple[str, str, int]]

    @classmethod
    def of(cls, service: dict[str, Any]) -> Policy:
        """The policy of one service entry of the compose file."""
        assert service.get("read_only") is True, "read_only is not true"
        assert service.get("cap_drop") == ["ALL"], service.get("cap_drop")
        resources = service["deploy"]["resources"]
        nofile = service.get("ulimits", {}).get("nofile")
        return cls(
            cap_add=tuple(f"CAP_{name}" for name in service.get("cap_add", [])),
            user=service.get("user"),
            limits=resources["limits"],
            reservations=resources["reservations"],
            nofile=nofile["hard"] if nofile else None,
            tmpfs=tuple(
                sorted(
                    volume["target"]
                    for volume in service.get("volumes", [])
                    if isinstance(volume, dict) and volume["type"] == "tmpfs"
                )
            ),
            secrets={
                secret["source"]: (secret["uid"], secret["gid"], secret["mode"])
                for secret in service.get("secrets", [])
            },
        )


def stack_policies() -> dict[str, Policy]:
    """Every service of docker-compose.yml and of the monitoring overlay (the
    services it defines, not its addition to nginx), and its policy."""
    policies: dict[str, Policy] = {}
    for name in ("docker-compose.yml", images.MONITORING_OVERLAY):
        compose = yaml.safe_load((images.ROOT / name).read_text())
        policies.update(
            (service, Policy.of(entry))
            for service, entry in compose["services"].items()
            if "deploy" in entry
        )
    return policies


# The services the monitoring overlay adds, which run only where it is deployed.
OPTIONAL = frozenset(images.MONITORING_IMAGES.values())


def capability_sets(status: str) -> dict[str, int]:
    """CapInh/CapPrm/CapEff/CapBnd/CapAmb of a /proc/PID/status text, as numbers."""
    return {
        key: int(value, 16)
        for key, value in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", status, re.M)
    }


def check_container(engine: Engine, container: str, policy: Policy) -> None:
    """One running container against its service's policy; AssertionError if not."""
    found = json.loads(engine("inspect", container))[0]
    host = found["HostConfig"]
    name = found["Name"]
    assert host["ReadonlyRootfs"] is True, f"{name}: root file system writable"
    assert host["CapDrop"] == ["ALL"], f"{name}: CapDrop {host['CapDrop']}"
    assert sorted(host["CapAdd"] or []) == sorted(policy.cap_add), host["CapAdd"]
    limits = policy.limits
    assert host["NanoCpus"] == nano_cpus(limits["cpus"]), f"{name}: {host['NanoCpus']}"
    assert host["Memory"] == size_bytes(limits["memory"]), f"{name}: {host['Memory']}"
    assert host["PidsLimit"] == limits["pids"], f"{name}: pids {host['PidsLimit']}"
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"] or []}
    if policy.nofile is not None:
        expected = (policy.nofile, policy.nofile)
        assert ulimits.get("nofile") == expected, f"{name}: ulimits {ulimits}"
    tmpfs = sorted(m["Destination"] for m in found["Mounts"] if m["Type"] == "tmpfs")
    assert tmpfs == list(policy.tmpfs), f"{name}: tmpfs {tmpfs}"
    if policy.user is not None:
        assert found["Config"]["User"] == policy.user, found["Config"]["User"]
    status = engine("exec", container, "cat", "/proc/1/status")
    # The kernel's view: no capability beyond cap_add's, in any set of PID 1.
    allowed = len(policy.cap_add)
    bounding = capability_sets(status)["CapBnd"]
    assert bin(bounding).count("1") == allowed, f"{name}: CapBnd {bounding:x}"
    for source, (uid, gid, mode) in policy.secrets.items():
        stat = engine(
            "exec", container, "stat", "-c", "%a %u %g", f"/run/secrets/{source}"
        )
        assert stat.split() == [f"{mode:o}", uid, gid], f"{name}: {source} {stat}"


def check_root_write_fails(engine: Engine, container: str) -> str:
    """A write to / as root inside the container fails as read-only; the message."""
    # As root (no capability needed to write a root-owned folder), so only the
    # read-only mount can refuse it, not the file's permissions.
    said = engine("exec", "--user", "0", container, "sh", "-c", WRITE_PROBE).strip()
    assert "Read-only file system" in said, f"root file system write: {said!r}"
    return said.rsplit(": ", 1)[-1]


def check_web_image(engine: Engine, container: str) -> None:
    """The app's image: a non-root user and no setuid or setgid file at all."""
    image = json.loads(engine("inspect", container))[0]["Image"]
    user = json.loads(engine("image", "inspect", image))[0]["Config"]["User"]
    assert user.split(":")[0] not in ("", "0", "root"), f"web image user {user!r}"
    # The image as built (root, Docker's default capabilities: every folder readable),
    # not the hardened task, whose root cannot enter other users' private folders.
    special = engine(
        "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "find",
        image, "/", "-xdev", "-type", "f", "-perm", "/6000",
    )  # fmt: skip
    assert not special.split(), f"setuid/setgid files in the web image: {special}"


def running_tasks() -> list[tuple[str, str, str]]:
    """(service, node id, container id) of every running task of the stack, whose
    scheduler reservations (not a container setting) are the policy's."""
    ids = docker(
        "stack", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", STACK
    ).split()
    found = []
    for task in json.loads(docker("inspect", *ids)) if ids else []:
        status = task["Status"]
        if status["State"] != "running":
            continue
        service = json.loads(docker("service", "inspect", task["ServiceID"]))[0]
        name = service["Spec"]["Name"].removeprefix(f"{STACK}_")
        reserved = task["Spec"]["Resources"]["Reservations"]
        policy = stack_policies()[name].reservations
        assert reserved == {
            "NanoCPUs": nano_cpus(policy["cpus"]),
            "MemoryBytes": size_bytes(policy["memory"]),
        }, f"{name}: reservations {reserved}"
        found.append((name, task["NodeID"], status["ContainerStatus"]["ContainerID"]))
    return found


def describe(name: str, policy: Policy, tasks: int) -> str:
    """The line the e2e prints for one verified service."""
    limits, reserved = policy.limits, policy.reservations
    caps = "+".join(c.removeprefix("CAP_") for c in policy.cap_add) or "none"
    secrets = {f"{m:o} {u}:{g}" for u, g, m in policy.secrets.values()}
    return (
        f"hardening {name} ({tasks} tasks): read-only root, caps dropped ALL added "
        f"{caps}, cpus {limits['cpus']} (reserved {reserved['cpus']}), memory "
        f"{limits['memory']} (reserved {reserved['memory']}), pids {limits['pids']}, "
        f"nofile {policy.nofile or 'default'}, tmpfs {' '.join(policy.tmpfs)}, "
        f"secrets {', '.join(sorted(secrets)) or 'none'}"
    )


def verify_hardening(
    engine_of: Callable[[str], Engine], add: Callable[[str], None]
) -> None:
    """Every running task against its policy; a line per service to `add`.

    `engine_of(node_id)` is the engine that runs a task on that node.
    """
    tasks = running_tasks()
    seen = {name for name, _, _ in tasks}
    policies = {n: p for n, p in stack_policies().items() if n in seen}
    known = set(stack_policies())
    assert known - OPTIONAL <= seen <= known, f"running services {sorted(seen)}"
    for name, policy in policies.items():
        mine = [(node, c) for service, node, c in tasks if service == name]
        for node, container in mine:
            check_container(engine_of(node), container, policy)
        node, container = mine[0]
        line = describe(name, policy, len(mine))
        if name in WRITE_PROBED:
            said = check_root_write_fails(engine_of(node), container)
            line += f"; a write to / as root: {said}"
        if name == "web":
            check_web_image(engine_of(node), container)
            line += "; image user non-root, no setuid/setgid file"
        add(line)


def step_hardening(url: str, figures: Figures) -> None:
    """The single-node scenario's step: one engine runs every task."""
    verify_hardening(lambda _node: docker, figures.add)


def step_hardening_nodes(nodes: Nodes, figures: Figures) -> None:
    """The several-node scenario's step: each task inspected on its node's engine."""
    hostnames = dict(
        line.split()
        for line in docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}").split(
            "\n"
        )
        if line
    )
    engines = {node.hostname: node.docker for node in nodes.swarm.nodes}
    verify_hardening(lambda node_id: engines[hostnames[node_id]], figures.add)
