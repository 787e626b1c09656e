"""The monitoring overlay on the several-node swarm: Prometheus's targets and alerts.

Read from Prometheus's HTTP API the way docs/SWARM.md ("Monitoring") tells an operator
to reach it through an SSH tunnel: from its node's own network namespace, at its
address on that node's docker_gwbridge (nothing is published).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from devstack import docker, find_binary, run, wait_until
from devstack.harness import STACK, WEB
from devstack.swarm_nodes import NETNS_DIR, Node
from e2e import images
from e2e.scenario import GOOD_FILES, Figures

if TYPE_CHECKING:
    from e2e.node_steps import Nodes

# The e2e's Prometheus config: the shipped one, with INTERVAL (intervals_overlay).
INTERVALS_OVERLAY = "e2e/prometheus-intervals.yml"
# What the several-node scenario deploys: the e2e's files, the monitoring overlay and
# the e2e's Prometheus config.
MONITORING_FILES = (*GOOD_FILES, images.MONITORING_OVERLAY, INTERVALS_OVERLAY)
PROMETHEUS_CONFIG = "monitoring/prometheus.yml"
# Scrape and evaluation interval of the e2e's Prometheus (shipped: 15 s). The alerts'
# expressions and `for:` are the shipped ones; each fires and resolves up to 2 x 10 s
# sooner after its window, which is all the run waits for.
INTERVAL = "5s"
PROMETHEUS = f"{STACK}_prometheus"
BACKEND = f"{STACK}_backend"
REDIS_ALERT = "PreworkRedisUnreachable"
ALERT_RULES = "monitoring/alerts.yml"
# The alert's `for:` (1 min) plus a DNS refresh, a scrape and an evaluation (5 + 5 +
# 5 s), with room to spare on a busy machine.
ALERT_TIMEOUT = 150.0
# Prometheus scrapes and evaluates every INTERVAL: asking once a second is enough.
ASK_INTERVAL = 1.0
FETCH = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
)


def intervals_overlay(folder: Path) -> dict[str, str]:
    """The shipped Prometheus config with every interval INTERVAL, written in
    `folder`; the variables INTERVALS_OVERLAY reads to deploy it."""
    config = yaml.safe_load((images.ROOT / PROMETHEUS_CONFIG).read_text())
    config["global"].update(
        scrape_interval=INTERVAL, scrape_timeout=INTERVAL, evaluation_interval=INTERVAL
    )
    text = yaml.safe_dump(config, sort_keys=False)
    path = folder / "prometheus.yml"
    path.write_text(text)
    return {
        "PREWORK_E2E_PROMETHEUS_CONFIG": str(path),
        # Swarm configs are immutable: named by their content, as deploy names them.
        "PREWORK_E2E_PROMETHEUS_DIGEST": hashlib.sha256(text.encode()).hexdigest()[:12],
    }


def gateway_address(node: Node) -> str:
    """The Prometheus container's address on the node's docker_gwbridge."""
    label = f"label=com.docker.swarm.service.name={PROMETHEUS}"
    ids = node.docker("ps", "-q", "--no-trunc", "--filter", label).split()
    assert ids, f"no Prometheus container on {node.hostname}"
    bridge = json.loads(node.docker("network", "inspect", "docker_gwbridge"))[0]
    containers = bridge.get("Containers") or {}
    entry = containers.get(ids[0])
    assert (
        entry
    ), f"{ids[0][:12]} not on {node.hostname}'s docker_gwbridge: {containers}"
    return str(entry["IPv4Address"].split("/")[0])


def ask(node: Node, address: str, path: str) -> Any:
    """GET one path of Prometheus's API from inside the node's network namespace."""
    time.sleep(ASK_INTERVAL)
    nsenter = find_binary("nsenter", "util-linux")
    url = f"http://{address}:9090{path}"
    argv = [nsenter, f"--net={NETNS_DIR / node.netns}", sys.executable, "-c", FETCH]
    body = json.loads(run([*argv, url], timeout=30).stdout)
    assert body["status"] == "success", body
    return body["data"]


def replica_addresses() -> dict[str, str]:
    """Backend address -> node hostname of each running web task."""
    names = dict(
        line.split()
        for line in docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}").split(
            "\n"
        )
        if line
    )
    ids = docker(
        "service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", WEB
    ).split()
    found = {}
    for task in json.loads(docker("inspect", *ids)) if ids else []:
        if task["Status"]["State"] != "running":
            continue
        for attachment in task.get("NetworksAttachments", []):
            if attachment["Network"]["Spec"]["Name"] == BACKEND:
                address = attachment["Addresses"][0].split("/")[0]
                found[address] = names.get(task["NodeID"], "?")
    return found


def targets(node: Node, address: str) -> dict[str, dict[str, str]]:
    """Job -> {target address: health} of Prometheus's active targets."""
    found: dict[str, dict[str, str]] = {}
    for target in ask(node, address, "/api/v1/targets?state=active")["activeTargets"]:
        labels = target["labels"]
        host = labels["instance"].rsplit(":", 1)[0]
        found.setdefault(labels["job"], {})[host] = target["health"]
    return found


def step_monitoring_targets(nodes: Nodes, figures: Figures) -> None:
    """Prometheus has every web replica, on every node, as an `up` target, and the
    nginx and Redis exporters up too."""
    node = nodes.nginx
    address = gateway_address(node)
    seen: dict[str, dict[str, str]] = {}
    replicas: dict[str, str] = {}

    def every_replica_up() -> bool:
        replicas.clear()
        replicas.update(replica_addresses())
        seen.clear()
        seen.update(targets(node, address))
        web = seen.get("web", {})
        exporters = [seen.get(job, {}) for job in ("nginx", "redis")]
        return (
            len(replicas) == 3
            and web == {replica: "up" for replica in replicas}
            and all(set(health.values()) == {"up"} for health in exporters)
        )

    started = time.monotonic()
    wait_until(every_replica_up, 90, f"every web replica up in Prometheus: {seen}")
    by_node = Counter(replicas.values())
    figures.add(
        f"Prometheus (at {address} on {node.hostname}'s docker_gwbridge) has every web "
        f"replica up after {time.monotonic() - started:.1f} s: by node "
        f"{dict(sorted(by_node.items()))}; nginx and Redis exporters up"
    )


def alert_state(node: Node, address: str, name: str) -> str:
    """`firing`, `pending` or `inactive`: the alert as Prometheus has it now."""
    alerts = ask(node, address, "/api/v1/alerts")["alerts"]
    states = {a["state"] for a in alerts if a["labels"]["alertname"] == name}
    return "firing" if "firing" in states else "pending" if states else "inactive"


class RedisAlert:
    """The Redis alert around the loss of Redis's node: quiet before, firing within its
    `for:` window after the cut, resolved after the node is back."""

    name = REDIS_ALERT

    def __init__(self, nodes: Nodes) -> None:
        self.node = nodes.nginx
        self.address = gateway_address(self.node)
        rules = yaml.safe_load((images.ROOT / ALERT_RULES).read_text())["groups"]
        found = [r for g in rules for r in g["rules"] if r.get("alert") == self.name]
        # The rule's own window, as shipped: the e2e waits for the real thing.
        self.window = str(found[0]["for"])

    def state(self) -> str:
        """The alert's state now."""
        return alert_state(self.node, self.address, REDIS_ALERT)

    def wait(self, state: str, since: float, what: str) -> float:
        """Wait until the alert is in `state`; seconds since `since`."""
        wait_until(lambda: self.state() == state, ALERT_TIMEOUT, f"{self.name} {what}")
        return time.monotonic() - since
