"""devstack's parts: finding binaries, free ports, waiting for a condition."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import devstack
from devstack import (
    CommandFailed,
    TimedOut,
    find_binary,
    free_port,
    port_open,
    run,
    wait_until,
)
from devstack.binaries import SBIN_DIRS


def test_find_binary_looks_in_sbin_when_path_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = [d for d in SBIN_DIRS if Path(d, "nginx").exists()]
    find_binary("nginx", "nginx")  # skips (or fails in CI) when nginx is absent
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_binary("nginx", "nginx") == f"{installed[0]}/nginx"


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_port_open_sees_a_listener_and_only_then() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert not port_open(port)
        listener.listen()
        assert port_open(port)


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = iter([None, 0, "ready"])
    assert wait_until(lambda: next(calls), timeout=5, what="a value") == "ready"


def test_wait_until_times_out_naming_what_and_the_last_error() -> None:
    def failing() -> bool:
        raise ValueError("not yet")

    with pytest.raises(TimedOut) as raised:
        wait_until(failing, timeout=0.2, what="the impossible")
    assert isinstance(raised.value, AssertionError)
    assert "the impossible" in str(raised.value)
    assert "not yet" in str(raised.value)


def test_run_captures_output_and_explains_a_failure() -> None:
    assert run(["/bin/sh", "-c", "echo hello"]).stdout == "hello\n"
    with pytest.raises(CommandFailed) as raised:
        run(["/bin/sh", "-c", "echo first; echo last >&2; exit 3"])
    assert "exited 3" in str(raised.value)
    assert str(raised.value).endswith("first\nlast")
    assert run(["/bin/sh", "-c", "exit 4"], check=False).returncode == 4


def test_the_docker_wrapper_is_not_shadowed_by_a_module() -> None:
    assert devstack.docker.__module__ == "devstack.commands"


# What `nox -s serve` imports; it installs the service alone (`pip install -e .`).
SERVE_IMPORTS = """
import json, sys
import devstack, devstack.serve, devstack.proxy
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""
PROJECT_PACKAGES = {"app", "release", "nginx", "deploy", "devstack", "e2e"}


def distribution(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return canonicalize_name(name)


def runtime_closure() -> set[str]:
    """The service's dependencies and theirs, as `pip install .` gets them here."""
    found: set[str] = set()
    pending = ["prework-flask-app"]
    while pending:
        for line in importlib.metadata.requires(pending.pop()) or []:
            requirement = Requirement(line)
            name = distribution(requirement.name)
            applies = requirement.marker is None or requirement.marker.evaluate(
                {"extra": ""}
            )
            if applies and name not in found:
                found.add(name)
                pending.append(name)
    return found


def test_serving_imports_only_the_service_dependencies() -> None:
    """devstack, as `nox -s serve` imports it, needs no test-only library (issue 26)."""
    # Without coverage's hook (`patch = ["subprocess"]`), which imports coverage.
    quiet = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(  # nosec B603 # this Python, fixed code
        [sys.executable, "-c", SERVE_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        env=quiet,
    )
    imported = set(json.loads(done.stdout)) - set(sys.stdlib_module_names)
    imported -= PROJECT_PACKAGES
    owners = importlib.metadata.packages_distributions()
    allowed = runtime_closure()
    outside = {
        name: owners.get(name, ["?"])
        for name in sorted(imported)
        if not name.startswith("_")
        and not {distribution(owner) for owner in owners.get(name, [])} & allowed
    }
    assert outside == {}


def test_a_dead_engines_vxlan_in_the_host_namespace_is_removed() -> None:
    """Debris an engine killed half-way leaves ("error creating vxlan interface: file
    exists" for the next engine's tasks) is cleared before our dockerd starts."""
    from devstack.dockerd import remove_stale_vxlans

    ip = find_binary("ip", "iproute2")
    if os.geteuid() != 0:
        pytest.skip("making a network interface needs root")
    name = "vx-prework-t"
    run([ip, "link", "add", name, "type", "vxlan", "id", "4242", "dstport", "4789"])
    try:
        assert name in remove_stale_vxlans()
        assert run([ip, "link", "show", name], check=False).returncode != 0
    finally:
        run([ip, "link", "delete", name], check=False)
