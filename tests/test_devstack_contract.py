"""Every ServiceProcess in devstack keeps the same contract: started, it is ready and
runs in a folder of its own; stopped, its process is gone and its folder removed.

A new service class fails `test_every_service_class_is_covered` until it is given a
factory here, or a reason why another test covers it.
"""

from __future__ import annotations

import getpass
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import devstack
from devstack.edge import EdgeServer
from devstack.gitserver import FcgiWrap
from devstack.gunicorn import GunicornServer
from devstack.nginx import NginxServer, UpstreamWatch
from devstack.ports import free_port
from devstack.processes import ServiceProcess
from devstack.redis import RedisServer
from devstack.registry import RegistryServer
from devstack.sshd import SshServer

pytestmark = pytest.mark.slow


def watcher(tmp: Path) -> UpstreamWatch:
    """The upstream watcher alone, writing its servers file under `tmp`."""
    settings = {"HOST": "localhost", "PORT": "8000", "POLL": "1"}
    variables = {f"NGINX_UPSTREAM_{k}": v for k, v in settings.items()}
    variables["NGINX_UPSTREAM_SERVERS"] = str(tmp / "web.servers")
    return UpstreamWatch(variables, ["true"])


# Each makes a service from a temporary folder the test owns.
FACTORIES: dict[str, Callable[[Path], ServiceProcess]] = {
    "RedisServer": lambda tmp: RedisServer(),
    "GunicornServer": lambda tmp: GunicornServer({"APP_ENV": "development"}),
    # Nothing behind either: they start, and answer 502 until something listens.
    "NginxServer": lambda tmp: NginxServer(free_port()),
    "EdgeServer": lambda tmp: EdgeServer(free_port()),
    "UpstreamWatch": watcher,
    "FcgiWrap": lambda tmp: FcgiWrap(),
    "RegistryServer": lambda tmp: RegistryServer(),
    "SshServer": lambda tmp: SshServer(getpass.getuser()),
}
COVERED_ELSEWHERE = {
    "WatchedNginx": "a base: NginxServer and EdgeServer are its services",
    "GitNginx": "needs FcgiWrap's socket: GitServer starts both (rehearsal tests)",
    "Dockerd": "holds the machine's Docker lock, which a test must not wait for: the "
    "e2e, the rehearsal and bench_image start it; tests/test_workflow_registry.py "
    "only when the lock is free (Dockerd(wait_for_lock=False))",
    "NodeDockerd": "needs a node's namespaces: tests/test_devstack_swarm_nodes.py",
}


def service_classes() -> Iterator[type[ServiceProcess]]:
    """Every subclass of ServiceProcess that devstack's modules define."""
    for module in pkgutil.iter_modules(devstack.__path__):
        importlib.import_module(f"devstack.{module.name}")
    pending = list(ServiceProcess.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("devstack."):
            yield cls


def test_every_service_class_is_covered() -> None:
    names = {cls.__name__ for cls in service_classes()}
    assert names == set(FACTORIES) | set(COVERED_ELSEWHERE)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_a_service_is_ready_in_its_folder_and_leaves_nothing(
    name: str, tmp_path: Path
) -> None:
    service = FACTORIES[name](tmp_path)
    with service:
        assert service.ready(), f"{name} is not ready after start()"
        assert service.process is not None and service.process.poll() is None
        folder = service.folder
        assert folder is not None and folder.is_dir()
        process = service.process
    assert process.poll() is not None, f"{name} still runs after stop()"
    assert not folder.exists(), f"{name} left {folder}"
    assert service.process is None and service.folder is None
