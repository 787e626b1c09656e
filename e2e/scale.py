"""Scale step: web from 3 to 5 replicas and back under the mixed load; nginx follows.

nginx's upstream-watch.sh resolves `web` every second in the nginx container and
reloads nginx when the set of replicas changes. Each answer of `GET /` names the
replica (its hostname), so the step counts answers per replica through nginx and
times how far nginx lags behind Docker's DNS, in both directions, while the e2e's
mixed load (e2e/load.py) runs beside it: no request of any kind may fail.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import requests

from deploy.swarm import service_state
from devstack import TimedOut, docker, wait_until
from e2e.deploys import finish_load, started_load
from e2e.scenario import Figures, assert_no_failures
from devstack.harness import STACK, WEB

REPLICAS, SCALED = 3, 5
# With the mixed load's 8 r/s, below nginx's 20 r/s per client address (the edge sees
# every client as one address): every answer must be a 200.
RATE = 10.0
# A replica set counts as followed once this many answers in a row came from it.
RECENT = 4 * SCALED
TIMEOUT = 180.0
# Answers counted per replica once nginx follows the 5: about 10 each.
WINDOW = 10 * SCALED


@dataclass
class Answers:
    """GET / through nginx at RATE in a thread: answers per replica, failures."""

    url: str
    per_replica: Counter[str] = field(default_factory=Counter)
    recent: deque[tuple[float, str]] = field(
        default_factory=lambda: deque(maxlen=RECENT)
    )
    failures: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        """Send until stopped, each answer counted under its replica's hostname."""
        with requests.Session() as session:
            while not self.stopped.wait(jittered(1.0 / RATE)):
                try:
                    response = session.get(self.url, timeout=10)
                    response.raise_for_status()
                    hostname = str(response.json()["hostname"])
                except (requests.RequestException, ValueError, KeyError) as error:
                    with self.lock:
                        self.failures.append(f"{type(error).__name__}: {error}")
                    continue
                with self.lock:
                    self.per_replica[hostname] += 1
                    self.recent.append((time.monotonic(), hostname))

    def counted(self) -> Counter[str]:
        """Answers per replica so far."""
        with self.lock:
            return self.per_replica.copy()

    def only_from(self, hostnames: set[str]) -> float | None:
        """When the last RECENT answers came from all of `hostnames` and no other: the
        time of the first of them (nginx followed by then)."""
        with self.lock:
            recent = list(self.recent)
        if len(recent) < RECENT or {name for _, name in recent} != hostnames:
            return None
        return recent[0][0]


def jittered(interval: float) -> float:
    """`interval` on average, each one drawn anew: at a fixed pace beside the mixed
    load's own fixed pace, nginx's round robin can hand this client the same replicas
    in turn and never another one (one run: 50 answers from 4 of 5 replicas, while
    nginx's log shows every replica serving 22 of 110 requests)."""
    return interval * random.uniform(0.5, 1.5)  # nosec B311 - timing, not security


def nginx_dns_addresses() -> set[str]:
    """What `web` resolves to inside the nginx container, as the watcher sees it."""
    label = f"label=com.docker.swarm.service.name={STACK}_nginx"
    container = docker("ps", "-q", "--filter", label).split()[0]
    listed = docker("exec", container, "getent", "ahostsv4", "web", check=False)
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def running_hostnames(count: int) -> set[str] | None:
    """The running replicas' hostnames once there are exactly `count` of them."""
    hostnames = {task.hostname for task in service_state(WEB).running_tasks()}
    return hostnames if len(hostnames) == count else None


def scale_to(count: int, answers: Answers) -> str:
    """Scale web to `count`; once DNS lists `count` replicas, time nginx following."""
    started = time.monotonic()
    docker("service", "scale", "--detach", f"{WEB}={count}")
    hostnames = wait_until(
        lambda: running_hostnames(count), TIMEOUT, f"{count} running replicas"
    )
    wait_until(
        lambda: len(nginx_dns_addresses()) == count, TIMEOUT, f"DNS: {count} replicas"
    )
    listed = time.monotonic()
    try:
        followed = wait_until(lambda: answers.only_from(hostnames), 60, "nginx")
    except TimedOut as error:
        recent = Counter(name for _, name in list(answers.recent))
        raise TimedOut(f"{error}: from {hostnames}; lately {recent}") from None
    return (
        f"Docker's DNS (polled) listed {count} replicas {listed - started:.1f} s after"
        f" the command; nginx answered from exactly them from"
        f" {followed - started:.1f} s on"
    )


def step_scale(base: str, figures: Figures) -> None:
    """Scale 3 -> 5 -> 3 under the mixed load: nginx follows, no request fails."""
    add = figures.add
    load = started_load(base)
    answers = Answers(f"{base}/")
    thread = threading.Thread(target=answers.run, name="scale-answers", daemon=True)
    thread.start()
    try:
        wait_until(lambda: running_hostnames(REPLICAS), 60, "3 running replicas")
        add(f"scale {REPLICAS}->{SCALED}: {scale_to(SCALED, answers)}")
        window = answers.counted()
        wait_until(
            lambda: sum((answers.counted() - window).values()) >= WINDOW,
            60,
            f"{WINDOW} answers at {SCALED} replicas",
        )
        spread = answers.counted() - window
        add(f"scale {SCALED}->{REPLICAS}: {scale_to(REPLICAS, answers)}")
    finally:
        answers.stopped.set()
        thread.join(timeout=30)
        finish_load(load)
    assert_no_failures("load during the scale", load.report, figures)
    add(
        f"scale: {sum(answers.counted().values())} answers, {len(answers.failures)}"
        f" failed; {WINDOW} answers at {SCALED} replicas, per replica:"
        f" {sorted(spread.values())}"
    )
    assert not answers.failures, f"failed requests: {answers.failures[:10]}"
    assert len(spread) == SCALED, f"not every replica answered: {spread}"
