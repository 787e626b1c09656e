"""Every local service the project runs: for tests, benchmarks, `nox -s serve`, e2e.

Each service is a small context manager that starts a real Debian binary on loopback in
a temporary folder of its own and stops it (and its process group) on exit, even when
the block raised:

    with RedisServer() as redis, GunicornServer({"REDIS_URL": redis.url}) as app:
        requests.get(f"{app.url}/healthz")

The parts, one job each:

- `binaries.find_binary(name, package)`: PATH or sbin, else `MissingBinary` naming the
  Debian package. devstack never skips: tests/conftest.py turns MissingBinary into a
  skip, or a failure under PREWORK_REQUIRE_SERVICES=1.
- `ports.free_port()`: a free loopback port, never the same one twice in a process.
- `waiting.wait_until(condition, timeout, what)`: poll a condition; `TimedOut` after
  (what a service not up yet raises is retried; a bug in the condition is raised).
- `processes.Service`: start on entering a `with` block, stop on leaving it;
  `processes.ServiceProcess`: the base of every process-backed service (below);
  `stop_process`.
- `commands.run` / `commands.docker`: every command devstack runs, its output captured
  (or left on the terminal), a failure as one `CommandFailed` holding its last lines.
- One module per service: `redis.RedisServer`, `gunicorn.GunicornServer`,
  `nginx.NginxServer`, `edge.EdgeServer` (nginx's stream module with PROXY protocol),
  `dockerd.Dockerd` (holding the machine's Docker lock while it runs) and
  `dockerd.DockerEngine` (dockerd + swarm); `proxy` runs nginx and redis together
  (`python -m devstack.proxy`), `echo_app` is a bare WSGI stand-in.
- `swarm_nodes.swarm_nodes(count)`: a swarm of `count` engines, each in its own network
  and UTS namespace on a bridge of its own (needs root; `python -m e2e --nodes 3`).
- For the rehearsal (`python -m rehearsal`): `gitserver.GitServer` (git smart HTTP,
  nginx + fcgiwrap + git http-backend), `registry.RegistryServer` (docker-registry),
  `sshd.SshServer` (sshd with a generated host key to pin).
- `harness`: what e2e/ and rehearsal/ share (the stack's name and files, its secrets,
  signals, the failures that end a run).

Adding a service: subclass `ServiceProcess`, name its `binary` and Debian `package`,
and write `command(folder)` (argv, run in `folder`, a fresh temporary folder) and
`ready()` (True once it serves). Optionally `prepare(folder)` writes config files
before the start, `environment()` adds variables, and `stop_timeout` bounds the
graceful stop. The base finds the binary at construction (so a missing one is known
before anything starts), then on `start()` / `with` makes the folder, starts the
process in a new process group, waits for `ready()` (failing fast with `StartFailed`
if the process exits, with the last lines it wrote), and on `stop()` / exit SIGTERMs
it, SIGKILLs the group after `stop_timeout`, and removes the folder. Add it to
tests/test_devstack_contract.py, which fails until every service is there.
"""

from devstack.binaries import MissingBinary, find_binary
from devstack.commands import CommandFailed, docker, run
from devstack.dockerd import Dockerd, DockerEngine
from devstack.edge import EdgeServer
from devstack.gitserver import GitServer
from devstack.gunicorn import GunicornServer
from devstack.nginx import NginxServer
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess, StartFailed, stop_process
from devstack.redis import RedisServer
from devstack.registry import RegistryServer
from devstack.sshd import SshServer
from devstack.swarm_nodes import swarm_nodes
from devstack.waiting import TimedOut, wait_until

__all__ = [
    "LOOPBACK",
    "CommandFailed",
    "DockerEngine",
    "Dockerd",
    "EdgeServer",
    "GitServer",
    "GunicornServer",
    "MissingBinary",
    "NginxServer",
    "RedisServer",
    "RegistryServer",
    "ServiceProcess",
    "SshServer",
    "StartFailed",
    "TimedOut",
    "docker",
    "find_binary",
    "free_port",
    "port_open",
    "run",
    "stop_process",
    "swarm_nodes",
    "wait_until",
]
