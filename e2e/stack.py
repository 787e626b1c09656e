"""The stack under test: secrets, environment, HTTP helpers, logs and teardown."""

from __future__ import annotations

import json
import os
import socket
import subprocess  # nosec B404 - only its TimeoutExpired
import tempfile
from pathlib import Path
from typing import Any

import requests

from devstack import CommandFailed, docker, harness, wait_until
from devstack.harness import STACK

# Own secret names (the compose file lets them be chosen): never a real deployment's.
SECRETS = {
    "SECRET_KEY_SECRET": "prework_e2e_secret_key",
    "MONGO_URI_SECRET": "prework_e2e_mongo_uri",
    "REDIS_PASSWORD_SECRET": "prework_e2e_redis_password",
}


def refuse_foreign_stack() -> None:
    """Refuse an engine where a prework stack or the e2e's secrets already exist."""
    stacks = docker("stack", "ls", "--format", "{{.Name}}").split()
    if STACK in stacks:
        raise CommandFailed(
            f"a stack {STACK} already runs on this engine; not touching it"
        )
    existing = set(docker("secret", "ls", "--format", "{{.Name}}").split())
    if existing & set(SECRETS.values()):
        raise CommandFailed(
            "e2e secrets exist on this engine (an earlier run?); remove them"
        )


def create_secrets() -> None:
    """The stack's external secrets, under the e2e's own names."""
    harness.create_secrets(SECRETS)


def stack_environment(redis_image: str, nginx_image: str, port: int) -> None:
    """The variables docker-compose.yml reads, set for this process and its children."""
    os.environ.update(SECRETS)
    os.environ.update(
        REDIS_IMAGE=redis_image,
        NGINX_IMAGE=nginx_image,
        EDGE_IMAGE=nginx_image,
        PREWORK_HTTP_PORT=str(port),
        WEB_REPLICAS="3",
    )


def get(url: str, timeout: float = 15) -> requests.Response:
    """One GET through nginx."""
    return requests.get(url, timeout=timeout)


def get_json(url: str) -> dict[str, Any]:
    """GET that must answer 200 with a JSON object."""
    response = get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    body = response.json()
    assert isinstance(body, dict), f"{url}: {body!r}"
    return body


def published_ports() -> dict[str, list[dict[str, Any]]]:
    """Every service of the stack and the ports it publishes."""
    names = docker("stack", "services", STACK, "--format", "{{.Name}}").split()
    found = {}
    for name in names:
        spec = json.loads(docker("service", "inspect", name))[0]
        found[name] = spec["Spec"].get("EndpointSpec", {}).get("Ports", [])
    return found


def container_addresses(service: str) -> list[str]:
    """Every network address of the service's containers on this engine."""
    label = f"label=com.docker.swarm.service.name={service}"
    ids = docker("ps", "-q", "--filter", label).split()
    assert ids, f"no container of {service} on this engine"
    return [
        network["IPAddress"]
        for container in json.loads(docker("inspect", *ids))
        for network in container["NetworkSettings"]["Networks"].values()
        if network.get("IPAddress")
    ]


def main_process(service: str) -> tuple[str, str]:
    """(command line of PID 1, user id) inside one container of the service."""
    label = f"label=com.docker.swarm.service.name={service}"
    container = docker("ps", "-q", "--filter", label).split()[0]
    probe = "import os; print(open('/proc/1/cmdline').read().replace(chr(0), ' '))"
    command = docker("exec", container, "python", "-c", probe).strip()
    user = docker("exec", container, "id", "-u").strip()
    return command, user


def redis_config(name: str) -> str:
    """One of Redis's settings (CONFIG GET), asked inside its container."""
    label = f"label=com.docker.swarm.service.name={STACK}_redis"
    container = docker("ps", "-q", "--filter", label).split()[0]
    script = (
        'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" redis-cli CONFIG GET "$1"'
    )
    lines = docker("exec", container, "sh", "-c", script, "sh", name).split()
    assert lines[:1] == [name], f"CONFIG GET {name}: {lines}"
    return lines[1]


def app_answers(address: str, version: str) -> bool:
    """True when the app itself answers /version on address:8000 from here.

    A TCP connect is no proof: a network may accept any connection (a transparent
    proxy); only the app's own answer is.
    """
    try:
        response = requests.get(f"http://{address}:8000/version", timeout=2)
        return bool(response.json().get("version") == version)
    except (requests.RequestException, ValueError, AttributeError):
        return False


def redis_answers(address: str) -> bool:
    """True when Redis itself answers PING on address:6379 (PONG or NOAUTH)."""
    try:
        with socket.create_connection((address, 6379), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            reply = connection.recv(64)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def save_logs() -> Path:
    """Each service's logs and task list in a folder that outlives the run."""
    folder = Path(tempfile.mkdtemp(prefix="prework-e2e-logs-"))
    for service in docker(
        "stack", "services", STACK, "--format", "{{.Name}}", check=False
    ).split():
        try:
            logs = docker(
                "service", "logs", "--timestamps", "--tail", "3000", service,
                check=False, timeout=60,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            # `docker service logs` can wait forever on a task's log stream.
            logs = "docker service logs did not finish in 60 s\n"
        (folder / f"{service}.log").write_text(logs)
        tasks = docker("service", "ps", "--no-trunc", service, check=False)
        (folder / f"{service}.tasks").write_text(tasks)
    return folder


def stack_containers() -> list[str]:
    """Containers of the stack still present on this engine."""
    label = f"label=com.docker.stack.namespace={STACK}"
    return docker("ps", "-aq", "--filter", label).split()


def remove_stack(images: list[str], remove_images: bool) -> None:
    """Remove the stack, its volume, the e2e's secrets and (shared engine) images."""
    docker("stack", "rm", STACK, check=False)
    wait_until(lambda: not stack_containers(), 120, "the stack's containers to go")
    # Networks go a moment after the containers; the volume only once nothing uses it.
    wait_until(
        lambda: not docker(
            "network",
            "ls",
            "-q",
            "--filter",
            f"label=com.docker.stack.namespace={STACK}",
        ).split(),
        60,
        "the stack's networks to go",
    )
    for volume in ("redis_data", "notes_data"):
        docker("volume", "rm", f"{STACK}_{volume}", check=False)
    docker("secret", "rm", *SECRETS.values(), check=False)
    if remove_images:
        docker("image", "rm", *images, check=False)
