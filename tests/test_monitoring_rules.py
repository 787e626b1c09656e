"""The monitoring overlay's Prometheus config and alert rules, checked by promtool
(Debian's `prometheus` package) and unit-tested with the synthetic series of
monitoring/alerts.test.yml: each alert fires when it should and stays quiet when it
should not. What the rules see on a real swarm is proven by `nox -s e2e -- --nodes 3`.
"""

from __future__ import annotations

import re
import subprocess  # nosec B404 - runs promtool
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import find_binary
from e2e.images import compose_default
from e2e.monitoring import INTERVAL, INTERVALS_OVERLAY, intervals_overlay

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool with `args` in monitoring/; its words kept for the assertion."""
    binary = find_binary("promtool", "prometheus")
    return subprocess.run(  # nosec B603 - fixed argv
        [binary, *args], cwd=MONITORING, capture_output=True, text=True, check=False
    )


def alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule of alerts.yml by name."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def rule_tests() -> list[dict[str, Any]]:
    """Every alert_rule_test entry of alerts.test.yml."""
    data = yaml.safe_load(RULE_TESTS.read_text())
    return [case for test in data["tests"] for case in test["alert_rule_test"]]


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alerts())} rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_stays_quiet_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = rule_tests()
    with capsys.disabled():
        print(
            f"\n[monitoring] promtool test rules: {len(cases)} rule tests "
            f"of {len(alerts())} alerts passed"
        )


@pytest.mark.parametrize("name", sorted(alerts()))
def test_each_alert_has_a_firing_and_a_quiet_case_and_a_runbook_line(
    name: str,
) -> None:
    cases = [case for case in rule_tests() if case["alertname"] == name]
    assert any(case["exp_alerts"] for case in cases), f"{name} never fires"
    assert any(not case["exp_alerts"] for case in cases), f"{name} never stays quiet"
    rule = alerts()[name]
    assert rule["labels"]["severity"] in ("page", "ticket")
    assert rule["annotations"]["runbook"] == "docs/SWARM.md#alerts"
    swarm = (ROOT / "docs" / "SWARM.md").read_text()
    assert re.search(r"^#+ Alerts$", swarm, re.M), "docs/SWARM.md: no Alerts heading"
    assert re.search(rf"^\| `{name}` \|", swarm, re.M), f"no runbook line for {name}"


def test_the_replicas_alert_wants_the_stacks_default_replica_count() -> None:
    expr = alerts()["PreworkWebReplicasMissing"]["expr"]
    wanted = re.search(r'count\(up\{job="web"\} == 1\) < (\d+)', expr)
    assert wanted, expr
    assert wanted.group(1) == compose_default("WEB_REPLICAS")


def test_prometheus_scrapes_every_replica_by_dns_without_the_docker_socket() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert not any("dockerswarm_sd_configs" in job for job in jobs.values())
    web = jobs["web"]["dns_sd_configs"]
    assert web == [
        {"names": ["web"], "type": "A", "port": 8000, "refresh_interval": "5s"}
    ]
    assert config["rule_files"] == [RULES.name]


def test_the_e2e_prometheus_config_is_the_shipped_one_with_shorter_intervals(
    tmp_path: Path,
) -> None:
    """`nox -s e2e -- --nodes 3` waits on the shipped rules with a faster Prometheus:
    only the global intervals differ, and promtool accepts it with the rules."""
    variables = intervals_overlay(tmp_path)
    written = Path(variables["PREWORK_E2E_PROMETHEUS_CONFIG"])
    e2e, shipped = (
        yaml.safe_load(path.read_text())
        for path in (written, MONITORING / "prometheus.yml")
    )
    assert e2e.pop("global") == dict.fromkeys(
        ("scrape_interval", "scrape_timeout", "evaluation_interval"), INTERVAL
    )
    shipped.pop("global")
    assert e2e == shipped
    (tmp_path / RULES.name).write_bytes(RULES.read_bytes())
    result = promtool("check", "config", str(written))
    assert result.returncode == 0, result.stdout + result.stderr
    overlay = (ROOT / INTERVALS_OVERLAY).read_text()
    assert all(f"${{{name}}}" in overlay for name in variables), overlay
