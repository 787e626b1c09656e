"""The image and stack files hold the properties the swarm issue asks for.

YAML-level checks always run; `docker stack config` runs where the docker client exists
(it needs no engine). The behaviour itself is proven on a real swarm by `nox -s e2e`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import healthcheck
from app.config import load_settings
from nginx.render import EDGE_ENV, read_template_env
from tests.test_stack_hardening import stack_config

ROOT = Path(__file__).resolve().parent.parent
SECRET_VARIABLES = ("SECRET_KEY", "MONGO_URI", "REDIS_PASSWORD")


def load(name: str) -> dict[str, Any]:
    """A compose file as YAML data."""
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return load("docker-compose.yml")


def seconds(duration: str) -> float:
    """A compose duration such as 35s, 1m30s or 500ms, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def gunicorn_graceful_timeout() -> float:
    """gunicorn.conf.py's graceful_timeout (gunicorn's default, 30 s, when unset)."""
    config = ROOT / "gunicorn.conf.py"
    text = config.read_text() if config.is_file() else ""
    match = re.search(r"^graceful_timeout\s*=\s*(\d+)", text, re.M)
    return float(match.group(1)) if match else 30.0


COMPOSE_FILES = [
    "docker-compose.yml",
    "docker-compose.mongo.yml",
    "docker-compose.mongo-tls.yml",
    "docker-compose.embedded-store.yml",
    "docker-compose.monitoring.yml",
]
# A default image `${VARIABLE:-name:X.Y.Z}`: an exact release, which dependabot bumps
# (with the `v` some projects tag with, and a variant such as `-alpine`).
PINNED_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-[a-z0-9._/-]+:v?\d+\.\d+\.\d+(-[a-z]+)?\}$")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_name_a_version_the_debian_client_deploys(name: str) -> None:
    # Debian 12's docker.io client refuses a file without `version` ("1.0"); 3.9 has
    # deploy.resources.limits.pids; the files of one deploy must name the same.
    assert load(name)["version"] == "3.9"


def test_web_is_replicated_by_dns_round_robin_with_defaults(
    stack: dict[str, Any],
) -> None:
    web = stack["services"]["web"]
    assert web["image"] == "${WEB_IMAGE:-prework-flask-app}"
    assert web["deploy"]["replicas"] == "${WEB_REPLICAS:-3}"
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert "ports" not in web


def test_web_updates_one_at_a_time_start_first_and_rolls_back(
    stack: dict[str, Any],
) -> None:
    web = stack["services"]["web"]
    update = web["deploy"]["update_config"]
    assert update["parallelism"] == 1
    assert update["order"] == "start-first"
    assert update["failure_action"] == "rollback"
    assert seconds(update["delay"]) > 0
    check = web["healthcheck"]
    # The monitor window outlasts the checks that turn a started task unhealthy.
    assert seconds(update["monitor"]) >= seconds(check["interval"]) * check["retries"]
    assert web["deploy"]["rollback_config"]["order"] == "start-first"
    assert web["deploy"]["restart_policy"]["condition"] in {"any", "on-failure"}


def test_web_health_check_is_ready_once_then_live(stack: dict[str, Any]) -> None:
    """app/healthcheck.py, with the image's Python; it waits up to its own TIMEOUT for
    /readyz, within Docker's timeout."""
    check = stack["services"]["web"]["healthcheck"]
    assert check["test"] == ["CMD", "python", "-m", "app.healthcheck"]
    assert seconds(check["timeout"]) > healthcheck.TIMEOUT


def test_web_stops_after_gunicorn_graceful_timeout(stack: dict[str, Any]) -> None:
    grace = seconds(stack["services"]["web"]["stop_grace_period"])
    assert grace > gunicorn_graceful_timeout()


def test_every_service_has_resource_limits(stack: dict[str, Any]) -> None:
    for name, service in stack["services"].items():
        limits = service["deploy"]["resources"]["limits"]
        assert limits["cpus"] and limits["memory"], name


def test_secrets_reach_web_only_as_files(stack: dict[str, Any]) -> None:
    web = stack["services"]["web"]
    sources = {secret["source"] for secret in web["secrets"]}
    assert sources == {"secret_key", "mongo_uri", "redis_password"}
    for variable in SECRET_VARIABLES:
        assert variable not in web["environment"]
        secret = variable.lower()
        assert web["environment"][f"{variable}_FILE"] == f"/run/secrets/{secret}"
    assert all(s.get("external") for s in stack["secrets"].values())


def test_redis_has_a_password_persistence_and_no_port(stack: dict[str, Any]) -> None:
    redis = stack["services"]["redis"]
    assert "ports" not in redis
    assert [secret["source"] for secret in redis["secrets"]] == ["redis_password"]
    assert redis["volumes"][0] == "redis_data:/data"
    command = " ".join(redis["command"])
    assert "/run/secrets/redis_password" in command
    assert "--appendonly yes" in command
    assert redis["networks"] == ["backend"]


def test_the_edge_is_the_only_published_port(stack: dict[str, Any]) -> None:
    published = {n for n, s in stack["services"].items() if s.get("ports")}
    assert published == {"edge"}
    edge = stack["services"]["edge"]
    assert edge["ports"] == [
        {
            "target": int(read_template_env(EDGE_ENV)["NGINX_EDGE_LISTEN"]),
            "published": "${PREWORK_HTTP_PORT:-80}",
            "protocol": "tcp",
            "mode": "host",
        }
    ]
    assert edge["env_file"] == "nginx/edge.env"
    assert edge["configs"] == [
        {
            "source": "edge_template",
            "target": "/etc/nginx/templates/nginx.conf.template",
        },
        {
            "source": "edge_upstream_watch",
            "target": "/docker-entrypoint.d/40-prework-upstream-watch.sh",
            "mode": 0o555,
        },
    ]
    # Its configs are named apart from nginx's: an nginx change leaves it alone.
    for name in ("edge_template", "edge_upstream_watch"):
        assert stack["configs"][name]["name"].endswith("_${EDGE_TEMPLATE_DIGEST:-1}")
    assert stack["configs"]["edge_template"]["file"] == (
        "./nginx/templates/edge.conf.template"
    )
    assert edge["image"].startswith("${EDGE_IMAGE:-")
    assert edge["deploy"]["update_config"]["order"] == "stop-first"


def test_nginx_listens_behind_the_edge_and_updates_start_first(
    stack: dict[str, Any],
) -> None:
    nginx = stack["services"]["nginx"]
    assert "ports" not in nginx
    assert nginx["env_file"] == "nginx/template.env"
    assert nginx["configs"] == [
        {
            "source": "nginx_template",
            "target": "/etc/nginx/templates/default.conf.template",
        },
        {
            "source": "nginx_upstream_watch",
            "target": "/docker-entrypoint.d/40-prework-upstream-watch.sh",
            "mode": 0o555,
        },
    ]
    config = stack["configs"]["nginx_template"]
    assert config["file"] == "./nginx/templates/default.conf.template"
    watcher = stack["configs"]["nginx_upstream_watch"]
    assert watcher["file"] == "./nginx/upstream-watch.sh"
    assert watcher["name"].endswith("_${NGINX_TEMPLATE_DIGEST:-1}")
    assert nginx["deploy"]["update_config"]["order"] == "start-first"
    assert nginx["deploy"]["endpoint_mode"] == "dnsrr"
    # Graceful (SIGQUIT) past the upstream timeout, so in-flight requests finish.
    assert nginx["stop_grace_period"] == "35s"
    listen = read_template_env()["NGINX_LISTEN"].split()
    assert listen[1:] == ["proxy_protocol"]
    edge_env = read_template_env(EDGE_ENV)
    assert (edge_env["NGINX_UPSTREAM_HOST"], edge_env["NGINX_UPSTREAM_PORT"]) == (
        "nginx",
        listen[0],
    )


def test_backend_network_is_internal(stack: dict[str, Any]) -> None:
    backend = stack["networks"]["backend"]
    assert backend == {"driver": "overlay", "internal": True}
    assert stack["services"]["web"]["networks"] == ["backend"]
    assert stack["services"]["nginx"]["networks"] == ["frontend", "backend"]
    assert stack["services"]["edge"]["networks"] == ["frontend"]


def test_self_hosted_mongo_has_auth_and_a_volume() -> None:
    mongo = load("docker-compose.mongo.yml")["services"]["mongo"]
    environment = mongo["environment"]
    assert "MONGO_INITDB_ROOT_PASSWORD" not in environment
    assert environment["MONGO_INITDB_ROOT_PASSWORD_FILE"].startswith("/run/secrets/")
    assert mongo["volumes"][0] == "mongo_data:/data/db"
    assert "ports" not in mongo


def test_mongo_tls_files_come_from_secrets() -> None:
    web = load("docker-compose.mongo-tls.yml")["services"]["web"]
    assert {secret["source"] for secret in web["secrets"]} == {
        "mongo_ca",
        "mongo_client_pem",
    }
    # A managed MongoDB is outside the swarm: only this file gives web a way out.
    assert web["networks"] == ["backend", "egress"]
    for path in web["environment"].values():
        assert path.startswith("/run/secrets/")


def test_dockerfile_is_multi_stage_non_root_and_checks_health() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(
        r'^HEALTHCHECK .*\n?.*CMD \["python", "-m", "app.healthcheck"\]', text, re.M
    )
    assert re.search(r'^CMD \["gunicorn", ', text, re.M)
    for label in ("version", "revision"):
        assert f"org.opencontainers.image.{label}=" in text


def test_dockerignore_keeps_vcs_tests_and_caches_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", "tests", ".nox", ".venv", "**/__pycache__"} <= ignored


def test_docker_stack_config_accepts_the_stack_files() -> None:
    rendered = stack_config(
        (
            "docker-compose.yml",
            "docker-compose.mongo.yml",
            "docker-compose.mongo-tls.yml",
        )
    )
    web = rendered["services"]["web"]
    assert web["image"] == "prework-flask-app:test"
    assert web["deploy"]["replicas"] == 3
    assert rendered["services"]["edge"]["ports"][0]["published"] in (80, "80")
    assert set(rendered["services"]) == {"web", "redis", "nginx", "edge", "mongo"}


@pytest.mark.parametrize(
    ("name", "service"),
    [
        ("docker-compose.yml", "redis"),
        ("docker-compose.yml", "nginx"),
        ("docker-compose.yml", "edge"),
        ("docker-compose.mongo.yml", "mongo"),
        ("docker-compose.monitoring.yml", "prometheus"),
        ("docker-compose.monitoring.yml", "nginx-exporter"),
        ("docker-compose.monitoring.yml", "redis-exporter"),
    ],
)
def test_third_party_images_are_pinned_to_exact_releases(
    name: str, service: str
) -> None:
    assert PINNED_DEFAULT.match(load(name)["services"][service]["image"])


def test_dependabot_updates_the_compose_and_docker_images() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {entry["package-ecosystem"] for entry in config["updates"]}
    assert {"docker", "docker-compose"} <= ecosystems


@pytest.mark.parametrize(
    ("name", "service", "label"),
    [
        ("docker-compose.yml", "redis", "prework.redis"),
        ("docker-compose.yml", "edge", "prework.nginx"),
        ("docker-compose.yml", "nginx", "prework.nginx"),
        ("docker-compose.mongo.yml", "mongo", "prework.mongo"),
        ("docker-compose.monitoring.yml", "prometheus", "prework.monitoring"),
    ],
)
def test_state_and_the_published_port_stay_on_labelled_nodes(
    name: str, service: str, label: str
) -> None:
    constraints = load(name)["services"][service]["deploy"]["placement"]["constraints"]
    assert constraints == [f"node.labels.{label} == true"]


def megabytes(size: str) -> float:
    """A compose (256M) or redis (192mb) memory size in MiB."""
    match = re.fullmatch(r"(\d+)([kmg])b?", size.lower())
    assert match, size
    return int(match.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024}[match.group(2)]


def test_redis_evicts_only_keys_with_a_ttl_below_its_memory_limit(
    stack: dict[str, Any],
) -> None:
    redis = stack["services"]["redis"]
    command = " ".join(redis["command"])
    maxmemory = re.search(r"--maxmemory (\S+)", command)
    assert maxmemory
    limit = megabytes(redis["deploy"]["resources"]["limits"]["memory"])
    # Headroom for the AOF rewrite's fork and Redis's own overhead.
    assert megabytes(maxmemory.group(1)) <= 0.8 * limit
    policy = re.search(r"--maxmemory-policy (\S+)", command)
    # volatile-*: only keys with a TTL (cached notes) go, never the visits counter.
    assert policy and policy.group(1).startswith("volatile-")


def test_mongo_gets_time_to_shut_down_cleanly() -> None:
    mongo = load("docker-compose.mongo.yml")["services"]["mongo"]
    assert seconds(mongo["stop_grace_period"]) >= 30


def test_the_embedded_store_overlay_says_it_is_not_for_production() -> None:
    text = (ROOT / "docker-compose.embedded-store.yml").read_text()
    assert text.startswith("# NOT FOR PRODUCTION.")
    web = yaml.safe_load(text)["services"]["web"]
    assert web["environment"]["APP_ENV"] != "production"
    assert web["entrypoint"] == ["env", "-u", "MONGO_URI_FILE"]
    # The image's CMD without its --bind, which gunicorn.conf.py's default equals.
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert cmd
    image_cmd = json.loads(cmd.group(1))
    at = image_cmd.index("--bind")
    assert web["command"] == image_cmd[:at] + image_cmd[at + 2 :]
    # gunicorn.conf.py binds the settings' address: GUNICORN_BIND, else the image's.
    assert load_settings({}).server.bind == image_cmd[at + 1]
    assert (
        load_settings({"GUNICORN_BIND": "0.0.0.0:8001"}).server.bind == "0.0.0.0:8001"
    )
    assert web["environment"]["EMBEDDED_STORE_DIR"].startswith("/var/tmp/")
    assert web["volumes"] == ["notes_data:/var/tmp"]


def test_web_bounds_a_lookup_that_docker_dns_leaves_unanswered() -> None:
    # Redis's node lost: `redis` has no task; its lookup gets no answer (e2e --nodes).
    web = load("docker-compose.yml")["services"]["web"]
    options = dict(
        option.split(":") for option in web["environment"]["RES_OPTIONS"].split()
    )
    assert int(options["timeout"]) * int(options["attempts"]) <= 2, options


def test_monitoring_is_internal_with_retention_a_volume_and_no_docker_socket() -> None:
    overlay = load("docker-compose.monitoring.yml")
    services = overlay["services"]
    for name, service in services.items():
        assert "ports" not in service, f"{name} publishes a port"
        assert not any(
            "docker.sock" in str(volume) for volume in service.get("volumes", [])
        ), name
    for name in ("nginx-exporter", "redis-exporter"):
        assert services[name]["networks"] == ["backend"], name
    # Its own network, not internal: an address on its node for the SSH tunnel.
    assert services["prometheus"]["networks"] == ["backend", "monitoring"]
    assert overlay["networks"]["monitoring"] == {"driver": "overlay"}
    prometheus = services["prometheus"]
    assert prometheus["volumes"] == ["prometheus_data:/prometheus"]
    flags = " ".join(prometheus["command"])
    assert "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION:-15d}" in flags
    # The overlay adds nginx's stub_status server and nothing else to nginx.
    assert services["nginx"] == {
        "configs": [
            {
                "source": "nginx_status_template",
                "target": "/etc/nginx/templates/status.conf.template",
            }
        ]
    }
    status = (ROOT / "nginx" / "templates" / "status.conf.template").read_text()
    scrape = services["nginx-exporter"]["command"][0]
    assert scrape == "--nginx.scrape-uri=http://nginx:8081/stub_status"
    assert "listen 8081;" in status and "deny all;" in status


def test_docker_stack_config_accepts_the_monitoring_overlay() -> None:
    rendered = stack_config(
        (
            "docker-compose.yml",
            "docker-compose.embedded-store.yml",
            "docker-compose.monitoring.yml",
        )
    )
    services = rendered["services"]
    assert {"prometheus", "nginx-exporter", "redis-exporter"} <= set(services)
    sources = [config["source"] for config in services["nginx"]["configs"]]
    assert sorted(sources) == [
        "nginx_status_template",
        "nginx_template",
        "nginx_upstream_watch",
    ]
