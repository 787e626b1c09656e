"""The steps of the several-node scenario, each under a steady client through nginx.

Roles: node1 (manager) carries prework.nginx, so its bridge address is the published
one; node2 carries prework.redis, so Redis and its volume live there; node3 runs only
web replicas, and is the worker that is drained and then lost. Every answer's visit
count must be above the one before it: Redis kept its data, on its own volume. The
monitoring overlay runs beside the stack, Prometheus on node1 (prework.monitoring).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import docker, wait_until
from devstack.swarm_nodes import Node, SwarmNodes
from e2e.charts import render_timeline
from e2e.load import CREATE, DELETE, UPDATE, LoadReport, SteadyLoad
from e2e.monitoring import MONITORING_FILES, RedisAlert, step_monitoring_targets
from e2e.scenario import (
    STEADY_RATE,
    TIMEOUT,
    VERSION_A,
    VERSION_B,
    VERSION_BROKEN,
    Figures,
    deploy_cli,
)
from devstack.harness import STACK, WEB

IMAGE_A = "prework-flask-app:e2e-a"
IMAGE_B = "prework-flask-app:e2e-b"
IMAGE_BROKEN = "prework-flask-app:e2e-broken"
REDIS = f"{STACK}_redis"
NGINX = f"{STACK}_nginx"
# The published port, on the node labelled prework.nginx with nginx.
EDGE = f"{STACK}_edge"
# How long the manager may take to call a lost node Down and replace its tasks.
NODE_LOSS_TIMEOUT = 120.0
# One store for every node's replicas (shared_store), so the mix writes notes too.
SHARED_STORE_OVERLAY = "e2e/shared-store.yml"
NODE_FILES = (*MONITORING_FILES, SHARED_STORE_OVERLAY)
WRITES = frozenset({CREATE, UPDATE, DELETE})


@dataclass
class Nodes:
    """The swarm, each node's role, the published URL and what the client saw."""

    swarm: SwarmNodes
    nginx: Node
    redis: Node
    spare: Node
    url: str
    # Where each step's timeline chart goes (e2e/charts.py).
    charts: Path
    # Container hostname -> node, for every replica seen running.
    replica_node: dict[str, str] = field(default_factory=dict)
    last_visits: int = 0

    @classmethod
    def of(cls, swarm: SwarmNodes, charts: Path) -> Nodes:
        """Roles by position: node1 nginx (and manager), node2 redis, node3 spare."""
        nginx, redis, spare = swarm.nodes[:3]
        return cls(swarm, nginx, redis, spare, f"http://{nginx.address}", charts)

    def placements(self, service: str) -> list[tuple[str, str]]:
        """(container hostname, node) of each running task of the service."""
        names = dict(
            line.split()
            for line in docker(
                "node", "ls", "--format", "{{.ID}} {{.Hostname}}"
            ).splitlines()
        )
        ids = docker(
            "service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running",
            service,
        ).split()  # fmt: skip
        found = []
        for task in json.loads(docker("inspect", *ids)) if ids else []:
            status = task["Status"]
            container = status.get("ContainerStatus", {}).get("ContainerID", "")
            if container:
                # Remembered while still starting too: it may answer and be gone
                # before it is seen running.
                place = (container[:12], names.get(task["NodeID"], "?"))
                self.replica_node[place[0]] = place[1]
                if status["State"] == "running":
                    found.append(place)
        return found

    def web_nodes(self) -> Counter[str]:
        """How many running web replicas each node has."""
        return Counter(node for _, node in self.placements(WEB))

    def by_node(self, report: LoadReport) -> str:
        """Answers per node, from the replicas that gave them."""
        counts: Counter[str] = Counter()
        for replica, answers in report.replicas.items():
            counts[self.replica_node.get(replica, "?")] += answers
        return ", ".join(f"{node}: {n}" for node, n in sorted(counts.items()))

    def lost_visits(self, report: LoadReport) -> int:
        """How far the visit count fell back (0: each count above the one before)."""
        counted = [visits for visits in report.visits if visits is not None]
        lost = sum(
            earlier - later + 1
            for earlier, later in zip([self.last_visits, *counted], counted)
            if later <= earlier
        )
        if counted:
            self.last_visits = counted[-1]
        return lost


def under_load(
    nodes: Nodes,
    what: str,
    figures: Figures,
    action: Callable[[LoadReport], None],
    keeps_redis: bool = True,
) -> LoadReport:
    """Run `action` while a steady client asks nginx (it sees the client's report so
    far); the figures and the step's chart; every visit count above the one before."""
    nodes.placements(WEB)
    load = SteadyLoad(f"{nodes.url}/", STEADY_RATE, max_seconds=TIMEOUT + 120)
    with load:
        wait_until(lambda: load.report.sent >= 2 * STEADY_RATE, 30, "steady load")
        started, wall_started = time.monotonic(), time.time()
        action(load.report)
        took, wall_ended = time.monotonic() - started, time.time()
        sent = load.report.sent
        wait_until(lambda: load.report.sent >= sent + 2 * STEADY_RATE, 60, "load after")
    nodes.placements(WEB)
    report = load.report
    render_timeline(nodes.charts, what, report.timeline, wall_started, wall_ended)
    figures.add(
        f"{what}: {took:.1f} s; {report.summary()}; slowest answer "
        f"{report.slowest:.1f} s; answers by node {{{nodes.by_node(report)}}}"
    )
    figures.add(f"{what}, by kind: {report.kind_lines()}")
    if report.failures:
        print(f"[e2e] {what}: failures: {report.failures[:10]}", flush=True)
    # Every step, node losses too: no acknowledged write lost, no note twice.
    assert not report.data_problems, f"{what}: data check: {report.data_problems}"
    lost = nodes.lost_visits(report)
    if keeps_redis:
        assert not lost, f"{what}: the visit count fell back by {lost}"
    report.lost_visits = lost
    return report


def shared_store(folder: Path) -> dict[str, str]:
    """A folder every node's replicas write (the app runs unprivileged: sticky and
    world-writable, like /var/tmp); the variable SHARED_STORE_OVERLAY reads."""
    store = folder / "notes"
    store.mkdir()
    store.chmod(0o1777)
    return {"PREWORK_E2E_SHARED_STORE": str(store)}


def label_nodes(nodes: Nodes) -> None:
    """What an operator does once: the labels that place nginx and Redis."""
    docker("node", "update", "--label-add", "prework.nginx=true", nodes.nginx.hostname)
    docker(
        "node", "update", "--label-add", "prework.monitoring=true", nodes.nginx.hostname
    )
    docker("node", "update", "--label-add", "prework.redis=true", nodes.redis.hostname)


def step_deploy(nodes: Nodes, figures: Figures) -> None:
    """`python -m deploy` with the production files, as a person runs it."""
    label_nodes(nodes)
    started = time.monotonic()
    result = deploy_cli(IMAGE_A, VERSION_A, f"{nodes.url}/", NODE_FILES)
    assert result.returncode == 0, f"deploy of A failed: {result.stderr}"
    figures.add(
        f"deploy of A on {len(nodes.swarm.nodes)} nodes: "
        f"{time.monotonic() - started:.1f} s"
    )


def step_spread(nodes: Nodes, figures: Figures) -> None:
    """1. Web on at least two nodes; Redis, the edge and nginx where labels say."""
    spread = nodes.web_nodes()
    assert len(spread) >= 2, f"web replicas by node: {dict(spread)}"
    assert [n for _, n in nodes.placements(REDIS)] == [nodes.redis.hostname]
    assert [n for _, n in nodes.placements(EDGE)] == [nodes.nginx.hostname]
    assert [n for _, n in nodes.placements(NGINX)] == [nodes.nginx.hostname]

    def every_replica_answers(report: LoadReport) -> None:
        # nginx caches the DNS answer for 5 s and starts with its first address.
        wait_until(lambda: len(report.replicas) >= 3, 60, "every replica to answer")

    report = under_load(nodes, "spread, steady", figures, every_replica_answers)
    assert not report.failures, report.failures[:10]
    figures.add(f"web replicas by node: {dict(sorted(spread.items()))}")


def step_drain(nodes: Nodes, figures: Figures) -> None:
    """2. Drain the spare worker: its replicas move, 0 failed; then active again."""
    spare = nodes.spare.hostname
    assert nodes.web_nodes()[spare] >= 1, "no web replica on the spare node"

    def drain(_: LoadReport) -> None:
        docker("node", "update", "--availability", "drain", spare)
        wait_until(
            lambda: sum(nodes.web_nodes().values()) == 3
            and not nodes.web_nodes()[spare],
            TIMEOUT,
            f"web replicas to leave {spare}",
        )

    report = under_load(nodes, f"drain of {spare}", figures, drain)
    docker("node", "update", "--availability", "active", spare)
    assert not report.failures, report.failures[:10]


def step_update(nodes: Nodes, figures: Figures) -> None:
    """4a. Rolling update A->B by the deploy, across nodes: 0 failed; it also puts
    replicas back on the reactivated node (new tasks go where fewest run)."""

    def update(_: LoadReport) -> None:
        result = deploy_cli(IMAGE_B, VERSION_B, f"{nodes.url}/", NODE_FILES)
        assert result.returncode == 0, f"deploy of B failed: {result.stderr}"

    report = under_load(nodes, "rolling update A->B", figures, update)
    assert not report.failures, report.failures[:10]
    assert report.versions[VERSION_B] > 0, report.versions
    figures.add(
        f"web replicas by node after: {dict(sorted(nodes.web_nodes().items()))}"
    )


def lose_node(
    nodes: Nodes, node: Node, figures: Figures
) -> Callable[[LoadReport], None]:
    """Cut the node's link; wait until the manager calls it Down and web has three
    running replicas elsewhere; the figures of each phase."""

    def lose(_: LoadReport) -> None:
        cut = time.monotonic()
        nodes.swarm.cut_link(node)
        wait_until(
            lambda: nodes.swarm.node_states()[node.hostname][0] == "Down",
            NODE_LOSS_TIMEOUT,
            f"{node.hostname} Down",
        )
        down = time.monotonic() - cut
        wait_until(
            lambda: sum(nodes.web_nodes().values()) == 3
            and not nodes.web_nodes()[node.hostname],
            NODE_LOSS_TIMEOUT,
            f"web replicas to leave {node.hostname}",
        )
        replaced = time.monotonic() - cut
        figures.add(
            f"{node.hostname} lost: Down after {down:.1f} s, "
            f"its web replicas running elsewhere after {replaced:.1f} s"
        )

    return lose


def rejoin(nodes: Nodes, node: Node, figures: Figures) -> None:
    """Restore the node's link; it is Ready again."""
    started = time.monotonic()
    nodes.swarm.restore_link(node)
    wait_until(
        lambda: nodes.swarm.node_states()[node.hostname][0] == "Ready",
        NODE_LOSS_TIMEOUT,
        f"{node.hostname} Ready again",
    )
    figures.add(
        f"{node.hostname} back: Ready {time.monotonic() - started:.1f} s "
        "after its link came back"
    )


def step_lose_worker(nodes: Nodes, figures: Figures) -> None:
    """3. Lose the spare worker abruptly; count failed requests meanwhile."""
    spare = nodes.spare
    on_spare = nodes.web_nodes()[spare.hostname]
    assert on_spare >= 1, "no web replica on the spare node"
    report = under_load(
        nodes, f"loss of {spare.hostname}", figures, lose_node(nodes, spare, figures)
    )
    rejoin(nodes, spare, figures)
    assert_no_failed_read(report)


def assert_no_failed_read(report: LoadReport) -> None:
    """No read fails when a node is lost; a write may, never silently.

    A GET or HEAD nginx wrote on a kept-alive connection to a replica on the lost
    node gets no answer and no RST; after NGINX_UPSTREAM_GET_TIMEOUT (3 s) nginx
    gives that replica up and asks another (docs/PROXY.md, "A lost node"); a new
    connection to the node fails its 2 s connect and is retried the same way. A
    write in flight there may fail: the client got an error for it, and the data
    check (under_load) accepts either outcome of it, never a second note.
    """
    failed = [kind for kind, count in report.kinds.items() if count.failed]
    assert set(failed) <= WRITES, report.failures[:10]


def step_rollback(nodes: Nodes, figures: Figures) -> None:
    """4b. A broken image: Swarm rolls back across nodes, 0 failed, only B answers."""
    outcome: list[str] = []

    def broken(_: LoadReport) -> None:
        result = deploy_cli(IMAGE_BROKEN, VERSION_BROKEN, f"{nodes.url}/", NODE_FILES)
        assert result.returncode == 1, f"deploy of a broken image: {result.returncode}"
        outcome.append(result.stderr)

    report = under_load(nodes, "update to a broken image, rollback", figures, broken)
    assert "rolled back: prework_stack_web" in outcome[0], outcome[0]
    assert not report.failures, report.failures[:10]
    assert set(report.versions) == {VERSION_B}, report.versions


def step_lose_redis_node(nodes: Nodes, figures: Figures) -> None:
    """5. Lose Redis's own node: measured (answers without a count, lookup time,
    increments undone). Redis never starts elsewhere; once the node is back it runs
    there again on its volume, the count goes on, and no read fails. Prometheus's
    Redis alert, quiet before, fires within its `for:` window while the node is gone
    and resolves once it is back."""
    node = nodes.redis
    before = nodes.last_visits
    elsewhere: list[list[tuple[str, str]]] = []
    alert = RedisAlert(nodes)
    alert.wait("inactive", time.monotonic(), "quiet before the loss")

    def lose_and_watch(report: LoadReport) -> None:
        cut = time.monotonic()
        lose_node(nodes, node, figures)(report)
        # Redis has nowhere else to go: its task waits, on no other node.
        elsewhere.append(nodes.placements(REDIS))
        figures.add(f"Redis node loss: {redis_lookup(nodes)}")
        fired = alert.wait("firing", cut, "firing")
        rejoin(nodes, node, figures)
        back = time.monotonic()
        wait_until(
            lambda: [n for _, n in nodes.placements(REDIS)] == [node.hostname],
            NODE_LOSS_TIMEOUT,
            f"Redis running on {node.hostname} again",
        )
        resolved = alert.wait("inactive", back, "resolved")
        figures.add(
            f"Redis node loss: Prometheus's {alert.name} firing {fired:.1f} s after "
            f"the cut (for: {alert.window}), resolved {resolved:.1f} s after the "
            "node's link came back"
        )

    report = under_load(
        nodes,
        f"loss of {node.hostname} (Redis)",
        figures,
        lose_and_watch,
        keeps_redis=False,
    )
    assert elsewhere == [[]], f"Redis ran elsewhere during the loss: {elsewhere}"
    missing = report.visits.count(None)
    figures.add(
        f"Redis node loss: {len(report.failures)} failed, {missing} of "
        f"{len(report.visits)} answers without a visit count; count before {before}, "
        f"after {nodes.last_visits}; increments undone {report.lost_visits}"
    )
    # Measured, not held to 0: when the node comes back, Swarm may start the waiting
    # Redis task there while the old one (alive through the partition, and briefly
    # reachable again) still runs on the same volume; increments it took are undone.
    assert nodes.last_visits > before, "the visit count did not go on"
    # web's RES_OPTIONS bound the unanswered lookup of `redis` to 2 s (with glibc's
    # 5 s x 2, 3 of 54 requests timed out at the client's 10 s); what is left is the
    # node's own web replicas, as for any lost node.
    assert_no_failed_read(report)


# How long a web replica's resolver takes to look `redis` up, and what it finds.
LOOKUP = (
    "import socket, time\n"
    "start = time.monotonic()\n"
    "try:\n"
    "    found = sorted({a[4][0] for a in socket.getaddrinfo('redis', 6379)})\n"
    "except OSError as error:\n"
    "    found = repr(error)\n"
    "print(f'{time.monotonic() - start:.1f} s, {found}')\n"
)


def redis_lookup(nodes: Nodes) -> str:
    """The DNS lookup of `redis` from a web replica on nginx's node, timed."""
    label = f"label=com.docker.swarm.service.name={WEB}"
    manager = nodes.nginx
    containers = manager.docker("ps", "-q", "--filter", label).split()
    if not containers:
        return "no web replica on the manager to look redis up from"
    answer = manager.docker(
        "exec", containers[0], "python", "-c", LOOKUP, timeout=60, check=False
    )
    return f"lookup of redis from a web replica: {answer.strip()}"


def run_steps(nodes: Nodes, figures: Figures) -> None:
    """Every step in order."""
    # Imported here: e2e.hardening names this module's Nodes.
    from e2e.hardening import step_hardening_nodes

    for step in (
        step_deploy,
        step_hardening_nodes,
        step_spread,
        step_monitoring_targets,
        step_drain,
        step_update,
        step_lose_worker,
        step_rollback,
        step_lose_redis_node,
    ):
        step(nodes, figures)
