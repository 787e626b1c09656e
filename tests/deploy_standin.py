"""A stand-in Swarm manager behind deploy.swarm's runner, for the deploy sequence tests.

It answers the docker CLI calls the deploy makes (stack deploy, service and task state,
rollback, configs, nodes) from a small in-memory model and records every call.
What it leaves out, and so could hide: real scheduling and timing (every update
converges at once), health checks (an image listed in `broken` is rolled back by
"Swarm" once the deploy first asks for its tasks), overlay networking and registries.
`nox -s e2e` deploys for real.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess  # nosec B404 - only CompletedProcess, nothing is run
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy.placement import STACK_LABELS
from deploy.swarm import STACK_LABEL


@dataclass
class Service:
    """One service: its spec, the spec before its last update, its update status."""

    spec: dict[str, Any]
    previous: dict[str, Any] | None = None
    update: dict[str, str] | None = None
    hostnames: list[str] = field(default_factory=list)


def web_spec(name: str, stack: str, image: str, replicas: int) -> dict[str, Any]:
    return {
        "Name": name,
        "Labels": {STACK_LABEL: stack},
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {"ContainerSpec": {"Image": image, "Env": []}},
    }


class StandInSwarm:
    """The swarm: services by name, configs by name, a clock for update start times."""

    def __init__(self, stack: str = "s", replicas: int = 2) -> None:
        self.stack = stack
        self.replicas = replicas
        self.services: dict[str, Service] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.broken: set[str] = set()
        self.stack_deploy_error: str | None = None
        self.failing_health = False
        self.calls: list[list[str]] = []
        # Called before each command is answered: tests inject signals and races here.
        self.before_call: Callable[[list[str]], None] = lambda argv: None
        self._clock = itertools.count(1)
        self._hosts = itertools.count(1)

    # The runner deploy.swarm calls.
    def __call__(
        self, argv: list[str], env: Mapping[str, str] | None, stdin: str | None
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        try:
            self.before_call(argv)  # a LookupError here is the engine's error
            out = self.answer(argv, env or {}, stdin)
        except LookupError as error:
            return subprocess.CompletedProcess(argv, 1, "", f"Error: {error}\n")
        return subprocess.CompletedProcess(argv, 0, out, "")

    def answer(self, argv: list[str], env: Mapping[str, str], stdin: str | None) -> str:
        if argv[0] == "config":
            return self.config(argv[1], argv[2:], stdin)
        if argv[0] in ("stack", "service", "inspect"):
            return self.service_call(argv, env)
        verb = tuple(argv[:2])
        if verb == ("node", "ls"):
            return "node1\n"
        if verb == ("node", "inspect"):
            node = {"ID": "node1", "Description": {"Hostname": "manager"}}
            return json.dumps([{**node, "Spec": {"Labels": STACK_LABELS}}])
        if verb == ("image", "inspect"):
            return "sha256:" + "0" * 64 + "\n"
        raise AssertionError(f"the stand-in does not know `docker {' '.join(argv)}`")

    def service_call(self, argv: list[str], env: Mapping[str, str]) -> str:
        verb = tuple(argv[:2])
        if verb == ("stack", "deploy"):
            return self.stack_deploy(env)
        if verb == ("service", "ls"):
            return "\n".join(self.services) + "\n"
        if verb == ("service", "inspect"):
            return json.dumps([self.service_json(name) for name in argv[2:]])
        if verb == ("service", "ps"):
            self.notice_failed_health()
            return "\n".join(f"{argv[-1]}/{host}" for host in self.hosts(argv[-1]))
        if verb == ("service", "rollback"):
            self.roll_back(argv[-1])
            return ""
        if argv[0] == "inspect":
            return json.dumps([self.task_json(task) for task in argv[1:]])
        raise AssertionError(f"the stand-in does not know `docker {' '.join(argv)}`")

    # Services.
    def hosts(self, name: str) -> list[str]:
        return self.services[name].hostnames

    def web(self) -> Service:
        return self.services[f"{self.stack}_web"]

    def image(self) -> str:
        image: str = self.web().spec["TaskTemplate"]["ContainerSpec"]["Image"]
        return image

    def update(self, service: Service, spec: dict[str, Any], state: str) -> None:
        service.previous, service.spec = service.spec, spec
        service.update = {"State": state, "StartedAt": f"t{next(self._clock)}"}
        service.hostnames = [f"{next(self._hosts):012d}" for _ in range(self.replicas)]

    def stack_deploy(self, env: Mapping[str, str]) -> str:
        if self.stack_deploy_error is not None:
            raise LookupError(self.stack_deploy_error)
        name = f"{self.stack}_web"
        spec = web_spec(name, self.stack, env["WEB_IMAGE"], self.replicas)
        if name not in self.services:
            self.services[name] = Service(spec)
            self.update(self.services[name], spec, "completed")
            self.services[name].previous, self.services[name].update = None, None
        elif env["WEB_IMAGE"] in self.broken:
            self.update(self.web(), spec, "updating")
            self.failing_health = True
        elif spec != self.web().spec:
            self.update(self.web(), spec, "completed")
        return ""

    def notice_failed_health(self) -> None:
        """Swarm's update monitor sees the new tasks unhealthy: it rolls back."""
        if self.failing_health:
            self.failing_health = False
            previous = self.web().previous
            assert previous is not None
            self.update(self.web(), previous, "rollback_completed")

    def roll_back(self, name: str) -> None:
        service = self.services[name]
        if service.previous is None:
            raise LookupError(f"service {name} has no previous spec")
        self.update(service, service.previous, "rollback_completed")

    def service_json(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            raise LookupError(f"no such service: {name}")
        service = self.services[name]
        return {"ID": name, "Spec": service.spec, "UpdateStatus": service.update}

    def task_json(self, task: str) -> dict[str, Any]:
        name, host = task.split("/")
        image = self.services[name].spec["TaskTemplate"]["ContainerSpec"]["Image"]
        return {
            "Spec": {"ContainerSpec": {"Image": image}},
            "DesiredState": "running",
            "Status": {"State": "running", "ContainerStatus": {"ContainerID": host}},
        }

    # Configs.
    def config(self, verb: str, args: list[str], stdin: str | None) -> str:
        if verb == "create":
            *labels, name, _ = args
            if name in self.configs:
                raise LookupError(f"config {name} already exists")
            pairs = dict(label.split("=", 1) for label in labels[1::2])
            data = base64.b64encode((stdin or "").encode()).decode()
            self.configs[name] = {"Name": name, "Labels": pairs, "Data": data}
            return name + "\n"
        if verb == "ls":
            label, value = args[-1].removeprefix("label=").split("=", 1)
            found = [
                n for n, c in self.configs.items() if c["Labels"].get(label) == value
            ]
            return "".join(f"{name}\n" for name in found)
        if verb == "inspect":
            return json.dumps([{"Spec": self.configs[name]} for name in args])
        if verb == "rm":
            if args[0] not in self.configs:
                raise LookupError(f"no such config: {args[0]}")
            del self.configs[args[0]]
            return ""
        raise AssertionError(f"the stand-in does not know `docker config {verb}`")

    def config_data(self, name: str) -> Any:
        return json.loads(base64.b64decode(self.configs[name]["Data"]))
