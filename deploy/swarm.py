"""The Docker CLI calls a deploy needs: stack deploy, service and task state, rollback.

Everything goes through the `docker` client, so DOCKER_HOST (also ssh://) is honoured.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess  # nosec B404  # runs the docker client with fixed argv lists
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

ROLLBACK_STATES = frozenset(
    {"rollback_started", "rollback_paused", "rollback_completed"}
)
UNFINISHED_STATES = frozenset({"updating", "rollback_started"})
PAUSED_STATES = frozenset({"paused", "rollback_paused"})
STACK_LABEL = "com.docker.stack.namespace"


class DockerError(RuntimeError):
    """A docker command failed; the message is its last line of stderr."""


class Runner(Protocol):
    """Runs `docker ARGV` (stdin as text, env or the process's own); its result."""

    def __call__(
        self, argv: list[str], env: Mapping[str, str] | None, stdin: str | None
    ) -> subprocess.CompletedProcess[str]: ...


def run_docker_client(
    argv: list[str], env: Mapping[str, str] | None, stdin: str | None
) -> subprocess.CompletedProcess[str]:
    """The real docker client (honours DOCKER_HOST, also ssh://)."""
    executable = shutil.which("docker") or "docker"
    return subprocess.run(  # nosec B603  # argv list, no shell
        [executable, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=dict(env) if env is not None else None,
    )


# Every swarm call of the deploy goes through this one runner, so that a test can run
# the whole sequence against a stand-in engine (tests/test_deploy_sequence.py).
runner: Runner = run_docker_client


def docker(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> str:
    """Run `docker ARGS` and return its stdout; raise DockerError on failure."""
    result = runner(list(args), env, stdin)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise DockerError(f"docker {args[0]} {args[1]}: {lines[-1]}")
    return result.stdout


@dataclass(frozen=True)
class Task:
    """One task of a service, as the swarm manager reports it."""

    image: str
    state: str
    desired_state: str
    container_id: str

    @property
    def hostname(self) -> str:
        """The container's default hostname: its id's first 12 characters."""
        return self.container_id[:12]


@dataclass(frozen=True)
class ServiceState:
    """A service's spec image, replica count, update status and live tasks."""

    image: str
    replicas: int
    update_state: str | None
    update_started: str | None
    update_message: str
    tasks: tuple[Task, ...]

    def running_tasks(self) -> list[Task]:
        """Tasks that should run and do (running means healthy once it has a check)."""
        return [
            t
            for t in self.tasks
            if t.desired_state == "running" and t.state == "running"
        ]

    def converged(self) -> bool:
        """True when no update is in flight and every replica runs the spec image."""
        if self.update_state in UNFINISHED_STATES | PAUSED_STATES:
            return False
        running = self.running_tasks()
        return len(running) == self.replicas and all(
            t.image == self.image for t in running
        )


@dataclass(frozen=True)
class Snapshot:
    """What a service was before a deploy: its spec and when its last update began."""

    spec: Mapping[str, Any]
    update_started: str | None


def image_matches(spec_image: str, wanted: str) -> bool:
    """True when a spec image is `wanted`, possibly pinned with an @sha256 digest."""
    return spec_image == wanted or spec_image.startswith(wanted + "@")


def stack_deploy(stack: str, composes: list[str], env: Mapping[str, str]) -> None:
    """`docker stack deploy` of the compose files, passing registry credentials on.

    `--resolve-image changed`: a tag is asked of the registry only when the stack file
    changed it, so a redeploy never swaps in a newer image pushed behind the same tag.
    """
    files = [arg for compose in composes for arg in ("-c", compose)]
    docker(
        "stack",
        "deploy",
        "--with-registry-auth",
        "--resolve-image",
        "changed",
        *files,
        stack,
        env=env,
    )


def stack_snapshots(stack: str) -> dict[str, Snapshot]:
    """Every service of the stack by name, as it is now (empty: no such stack)."""
    ids = docker(
        "service", "ls", "-q", "--filter", f"label={STACK_LABEL}={stack}"
    ).split()
    if not ids:
        return {}
    return {
        raw["Spec"]["Name"]: Snapshot(
            raw["Spec"], (raw.get("UpdateStatus") or {}).get("StartedAt")
        )
        for raw in json.loads(docker("service", "inspect", *ids))
    }


def task_from(raw: Mapping[str, Any]) -> Task:
    """A Task from one object of `docker inspect <task>`."""
    status = raw.get("Status", {})
    return Task(
        image=raw["Spec"]["ContainerSpec"]["Image"],
        state=status.get("State", ""),
        desired_state=raw.get("DesiredState", ""),
        container_id=status.get("ContainerStatus", {}).get("ContainerID", ""),
    )


def service_spec(service: str) -> Mapping[str, Any]:
    """The service's current spec."""
    spec: Mapping[str, Any] = json.loads(docker("service", "inspect", service))[0][
        "Spec"
    ]
    return spec


def service_state(service: str) -> ServiceState:
    """The current state of `service`; raises DockerError when it does not exist."""
    spec = json.loads(docker("service", "inspect", service))[0]
    task_ids = docker(
        "service",
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "desired-state=running",
        service,
    ).split()
    raw_tasks = json.loads(docker("inspect", *task_ids)) if task_ids else []
    update = spec.get("UpdateStatus") or {}
    mode = spec["Spec"]["Mode"]
    return ServiceState(
        image=spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
        replicas=int(mode.get("Replicated", {}).get("Replicas", 1)),
        update_state=update.get("State"),
        update_started=update.get("StartedAt"),
        update_message=update.get("Message", ""),
        tasks=tuple(task_from(raw) for raw in raw_tasks),
    )


def rollback(service: str) -> None:
    """Ask Swarm to roll `service` back to its previous spec (returns at once)."""
    docker("service", "rollback", "--detach", service)


@dataclass(frozen=True)
class Node:
    """A swarm node: its id, hostname and labels."""

    id: str
    hostname: str
    labels: Mapping[str, str]

    @property
    def name(self) -> str:
        """How messages name it: hostname and short id."""
        return f"{self.hostname} ({self.id[:12]})"


def nodes() -> list[Node]:
    """Every node of the swarm (needs a manager)."""
    ids = docker("node", "ls", "-q").split()
    return [
        Node(raw["ID"], raw["Description"]["Hostname"], raw["Spec"].get("Labels") or {})
        for raw in json.loads(docker("node", "inspect", *ids))
    ]


def add_node_labels(node_id: str, labels: Mapping[str, str]) -> None:
    """`docker node update --label-add` each label on the node."""
    args = [arg for k, v in labels.items() for arg in ("--label-add", f"{k}={v}")]
    docker("node", "update", *args, node_id)


def local_image_id(image: str) -> str | None:
    """The engine's id of a local image (None when the engine does not hold it)."""
    try:
        return docker("image", "inspect", "--format", "{{.Id}}", image).strip()
    except DockerError:
        return None


def create_config(name: str, labels: Mapping[str, str], data: str) -> None:
    """`docker config create`: atomic, it fails when `name` exists (DockerError)."""
    args = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    docker("config", "create", *args, name, "-", stdin=data)


@dataclass(frozen=True)
class Config:
    """A Swarm config: its name, labels and data (text)."""

    name: str
    labels: Mapping[str, str]
    data: str


def configs_labelled(label: str, value: str) -> list[Config]:
    """Every config carrying `label=value`, in no particular order."""
    ids = docker("config", "ls", "-q", "--filter", f"label={label}={value}").split()
    if not ids:
        return []
    return [
        Config(
            raw["Spec"]["Name"],
            raw["Spec"].get("Labels") or {},
            base64.b64decode(raw["Spec"].get("Data") or "").decode(),
        )
        for raw in json.loads(docker("config", "inspect", *ids))
    ]


def remove_config(name: str) -> None:
    """`docker config rm NAME`."""
    docker("config", "rm", name)
