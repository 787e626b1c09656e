"""The stack's hardening (issue 27) as the compose files state it, and as the docker
client's own compose loader renders every documented combination of them.

What the engine applies is proven on a real swarm by `nox -s e2e` (e2e/hardening.py),
which also checks the app image's user and its lack of setuid/setgid files.
"""

from __future__ import annotations

import os
import re
import subprocess  # nosec B404 - runs the docker client
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import find_binary
from e2e.hardening import Policy, nano_cpus, size_bytes
from nginx.render import EDGE_ENV, EDGE_TEMPLATE, read_template_env

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "docker-compose.yml": ("web", "redis", "nginx", "edge"),
    "docker-compose.mongo.yml": ("mongo",),
    "docker-compose.monitoring.yml": ("prometheus", "nginx-exporter", "redis-exporter"),
}
# The only capabilities added back, and why (docker-compose.yml says it at length):
# nginx's master stays root, as the image's read-only nginx.conf has it.
ADDED = {"nginx": {"CHOWN", "SETGID", "SETUID"}}
# Every combination the README documents, in deploy order.
COMBINATIONS = [
    ("docker-compose.yml",),
    ("docker-compose.yml", "docker-compose.mongo-tls.yml"),
    ("docker-compose.yml", "docker-compose.mongo.yml"),
    ("docker-compose.yml", "docker-compose.embedded-store.yml"),
    ("docker-compose.yml", "docker-compose.mongo.yml", "docker-compose.mongo-tls.yml"),
    (
        "docker-compose.yml",
        "docker-compose.embedded-store.yml",
        "docker-compose.monitoring.yml",
    ),
]


def load(name: str) -> dict[str, Any]:
    """A compose file as YAML data."""
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def image_user() -> str:
    """The Dockerfile's last USER: the uid web runs as."""
    users = re.findall(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    return str(users[-1].split(":")[0])


def services() -> list[tuple[str, dict[str, Any]]]:
    """(name, entry) of every service the compose files define."""
    return [
        (service, load(name)["services"][service])
        for name, services in FILES.items()
        for service in services
    ]


def hardening(service: dict[str, Any]) -> dict[str, Any]:
    """The hardening keys of one service, in comparable units."""
    policy = Policy.of(service)
    return {
        "cap_add": policy.cap_add,
        "user": policy.user,
        "cpus": nano_cpus(policy.limits["cpus"]),
        "memory": size_bytes(policy.limits["memory"]),
        "pids": policy.limits["pids"],
        "reserved_cpus": nano_cpus(policy.reservations["cpus"]),
        "reserved_memory": size_bytes(policy.reservations["memory"]),
        "nofile": policy.nofile,
        "tmpfs": {
            volume["target"]: volume["tmpfs"]["size"]
            for volume in service.get("volumes", [])
            if isinstance(volume, dict) and volume["type"] == "tmpfs"
        },
        "secrets": policy.secrets,
    }


@pytest.mark.parametrize(("name", "service"), services(), ids=lambda v: str(v)[:12])
def test_every_service_is_read_only_with_every_capability_dropped(
    name: str, service: dict[str, Any]
) -> None:
    policy = Policy.of(service)  # asserts read_only: true and cap_drop: [ALL]
    assert {c.removeprefix("CAP_") for c in policy.cap_add} == ADDED.get(name, set())
    assert "privileged" not in service and "security_opt" not in service
    # A tmpfs has a size: its pages count against the memory limit.
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            assert volume["type"] == "tmpfs" and volume["tmpfs"]["size"] > 0, volume


@pytest.mark.parametrize(("name", "service"), services(), ids=lambda v: str(v)[:12])
def test_every_service_has_cpu_memory_and_process_limits_and_reservations(
    name: str, service: dict[str, Any]
) -> None:
    keys = hardening(service)
    assert keys["cpus"] > keys["reserved_cpus"] > 0
    assert keys["memory"] > keys["reserved_memory"] > 0
    assert keys["pids"] > 0
    # The tmpfs folders, full, leave the process at least half its memory limit.
    assert sum(keys["tmpfs"].values()) <= keys["memory"] / 2


@pytest.mark.parametrize(("name", "service"), services(), ids=lambda v: str(v)[:12])
def test_every_service_runs_as_its_image_user(
    name: str, service: dict[str, Any]
) -> None:
    if name == "web":
        # The image's own USER, which its secrets' owner must equal.
        assert "user" not in service
        owner = image_user()
    elif name == "nginx":
        # The master is root (see ADDED); its workers run as the image's nginx user.
        assert "user" not in service
        return
    else:
        owner = service["user"].split(":")[0]
        assert owner != "0"
    for secret in service.get("secrets", []):
        assert secret["uid"] == owner and secret["gid"] == owner, secret
        assert secret["mode"] == 0o400, secret


def test_the_mongo_tls_secrets_are_read_by_the_image_user_alone() -> None:
    web = load("docker-compose.mongo-tls.yml")["services"]["web"]
    for secret in web["secrets"]:
        assert (secret["uid"], secret["gid"], secret["mode"]) == (
            image_user(),
            image_user(),
            0o400,
        )


def test_open_file_limits_cover_what_each_process_keeps_open() -> None:
    stack = load("docker-compose.yml")["services"]
    command = " ".join(stack["redis"]["command"])
    maxclients = re.search(r"--maxclients (\d+)", command)
    assert maxclients
    # Redis keeps 32 descriptors beyond its clients; short of them it lowers maxclients.
    redis = Policy.of(stack["redis"]).nofile
    assert redis is not None and redis >= int(maxclients.group(1)) + 32
    # An edge worker's connections (client and nginx sides) are descriptors too.
    connections = re.search(r"worker_connections (\d+);", EDGE_TEMPLATE.read_text())
    assert connections
    edge = Policy.of(stack["edge"]).nofile
    assert edge is not None and edge > int(connections.group(1))


def test_the_edge_starts_on_the_config_it_renders_into_its_tmpfs() -> None:
    edge = load("docker-compose.yml")["services"]["edge"]
    env = read_template_env(EDGE_ENV)
    main = env["NGINX_MAIN_CONF"]
    assert edge["command"] == ["nginx", "-c", main, "-g", "daemon off;"]
    tmpfs = Policy.of(edge).tmpfs
    assert str(Path(main).parent) == env["NGINX_ENVSUBST_OUTPUT_DIR"]
    for written in ("NGINX_MAIN_CONF", "NGINX_UPSTREAM_SERVERS", "NGINX_EDGE_PID"):
        assert str(Path(env[written]).parent) in tmpfs, written
    # Unprivileged: the published port maps to it, so no NET_BIND_SERVICE is needed.
    assert int(env["NGINX_EDGE_LISTEN"]) > 1024
    assert edge["ports"][0]["target"] == int(env["NGINX_EDGE_LISTEN"])


def test_nginx_writes_only_to_its_tmpfs_on_an_unprivileged_port() -> None:
    nginx = load("docker-compose.yml")["services"]["nginx"]
    env = read_template_env()
    assert str(Path(env["NGINX_UPSTREAM_SERVERS"]).parent) in Policy.of(nginx).tmpfs
    assert int(env["NGINX_LISTEN"].split()[0]) > 1024


def stack_config(files: tuple[str, ...]) -> dict[str, Any]:
    """`docker stack config` of the files (the client's own loader and merge)."""
    docker = find_binary("docker", "docker.io")
    usage = subprocess.run(  # nosec B603 - fixed argv
        [docker, "stack", "--help"], capture_output=True, text=True, check=False
    ).stdout
    if not re.search(r"^\s+config\s", usage, re.M):
        pytest.skip("this docker client has no `docker stack config` (Docker 20.10's)")
    result = subprocess.run(  # nosec B603 - fixed argv
        [docker, "stack", "config", *(a for f in files for a in ("-c", f))],
        cwd=ROOT,
        env=dict(os.environ, WEB_IMAGE="prework-flask-app:test"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    return rendered


@pytest.mark.parametrize("files", COMBINATIONS, ids=lambda f: "+".join(f))
def test_docker_stack_config_keeps_the_hardening(files: tuple[str, ...]) -> None:
    rendered = stack_config(files)["services"]
    for name, service in rendered.items():
        expected = [load(f)["services"].get(name) for f in files]
        defined = [entry for entry in expected if entry and "deploy" in entry]
        assert len(defined) == 1, name
        keys = hardening(defined[0])
        # An overlay may add secrets (mongo-tls's) to a service; every one is 0400.
        for entry in expected:
            for secret in (entry or {}).get("secrets", []):
                keys["secrets"][secret["source"]] = (
                    secret["uid"],
                    secret["gid"],
                    secret["mode"],
                )
        assert hardening(service) == keys, name
