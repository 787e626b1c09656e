"""The rehearsal's services (git server, registry, sshd) serve, and leave nothing.

And `python -m rehearsal`, interrupted, stops every process it started and removes
every folder it made.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.gitserver import GitServer
from devstack.ports import port_open
from devstack.registry import RegistryServer
from devstack.sshd import SshServer, keygen
from devstack.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_git_server_serves_fetch_and_push_then_leaves_nothing(tmp_path: Path) -> None:
    with GitServer() as server:
        server.create("owner/repo")
        url = server.repository_url("owner/repo")
        work = tmp_path / "work"
        git("init", "-q", "-b", "master", str(work))
        (work / "file").write_text("one\n")
        git("add", "file", cwd=work)
        git(
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "one",
            cwd=work,
        )
        git("push", "-q", url, "master", cwd=work)
        listed = git("ls-remote", url)
        folders = [server.root, server.fcgiwrap.folder]
        port = server.port
    assert git("rev-parse", "master", cwd=work) in listed
    assert not port_open(port)
    assert not any(folder is not None and folder.exists() for folder in folders)


def test_registry_answers_the_v2_api_then_leaves_nothing() -> None:
    with RegistryServer() as registry:
        answer = requests.get(f"http://{registry.address}/v2/_catalog", timeout=5)
        folder = registry.folder
        port = registry.port
        assert answer.json() == {"repositories": []}
        assert registry.tags("nothing/here") == []
    assert not port_open(port)
    assert folder is not None and not folder.exists()


def test_sshd_accepts_its_key_with_the_host_key_pinned(tmp_path: Path) -> None:
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    with SshServer(user, {"PREWORK_PROBE": "seen"}) as sshd:
        key = tmp_path / "key"
        key.write_text(sshd.client_key)
        key.chmod(0o600)
        known = tmp_path / "known_hosts"
        known.write_text(sshd.known_hosts + "\n")
        options = ["-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"]
        options += ["-o", "BatchMode=yes", "-i", str(key)]
        host, port = sshd.target.rsplit(":", 1)
        answer = subprocess.run(
            ["ssh", *options, "-o", f"UserKnownHostsFile={known}", "-p", port, host]
            + ["echo $PREWORK_PROBE"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        # Another host's key pinned for the same address: ssh must refuse.
        other = keygen(tmp_path / "other_host_key")
        wrong = tmp_path / "wrong_hosts"
        wrong.write_text(f"[127.0.0.1]:{port} {other}\n")
        refused = subprocess.run(
            [
                "ssh",
                *options,
                "-o",
                f"UserKnownHostsFile={wrong}",
                "-p",
                port,
                host,
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        folder = sshd.folder
    assert answer.stdout.strip() == "seen", answer.stderr
    assert refused.returncode != 0
    assert not port_open(int(port))
    assert folder is not None and not folder.exists()


def descendants(pid: int) -> set[int]:
    """Every process below pid (by parent id), now."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[Path]:
    """A Docker lock of this test's own, held: the rehearsal waits at it."""
    import fcntl

    path = tmp_path / "docker.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield path


def test_interrupted_rehearsal_stops_everything_it_started(
    tmp_path: Path, held_lock: Path
) -> None:
    for name, package in [("fcgiwrap", "fcgiwrap"), ("nginx", "nginx")]:
        from devstack.binaries import find_binary

        find_binary(name, package)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "act").write_text("#!/bin/sh\nexit 99\n")  # never reached
    (fake_bin / "act").chmod(0o755)
    # One served "action" (any bare repository) is all the start needs.
    actions = tmp_path / "actions"
    actions.mkdir()
    bare = tmp_path / "bare" / "owner" / "action"
    git("init", "-q", "--bare", str(bare))
    with tarfile.open(actions / "owner+action.git.tar.gz", "w:gz") as tar:
        tar.add(bare.parent, arcname="owner")
    env = dict(os.environ, PREWORK_DOCKER_LOCK=str(held_lock))
    env["PATH"] = f"{fake_bin}:{env['PATH']}"
    log = tmp_path / "rehearsal.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "rehearsal", "--cycles", "1"]
            + ["--actions", str(actions)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: process.poll() is not None
                or "waiting for the Docker lock" in log.read_text(),
                120,
                "the rehearsal to wait for the Docker lock",
            )
            assert process.poll() is None, log.read_text()
            started = descendants(process.pid)
            text = log.read_text()
            folder = Path(text.split("working in ", 1)[1].split()[0])
            port = int(text.split("git server http://127.0.0.1:", 1)[1].split(":")[0])
            assert started and port_open(port) and folder.is_dir()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 130, log.read_text()
    assert not [pid for pid in started if alive(pid)]
    assert not port_open(port)
    assert not folder.exists()
