"""The multi-node harness: three engines in one swarm, talking over an overlay, and
nothing of them left afterwards, even when the body fails."""

from __future__ import annotations

import os
import subprocess  # nosec B404 - reads ip and iptables state
import sys
import tarfile
from pathlib import Path

import pytest

from devstack import find_binary, wait_until
from devstack.swarm_nodes import SwarmNodes, cgroup_dirs, swarm_nodes
from tests.conftest import skip_or_fail

# Each task answers its node's hostname on 8080, with the host's perl.
SERVER = (
    "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 8080,"
    " Listen => 5, ReuseAddr => 1) or die $!;"
    " while (my $c = $s->accept) { print $c `cat /etc/hostname`; close $c }"
)
# Asks every address given, one line "ADDRESS HOSTNAME" per answer.
CLIENT = (
    "use IO::Socket::INET; for my $ip (@ARGV) { my $c = IO::Socket::INET->new("
    'PeerAddr => $ip, PeerPort => 8080, Timeout => 3) or die "$ip: $!";'
    ' print "$ip ", scalar <$c> }'
)
IMAGE = "prework-nodes-probe:test"


class BodyFailed(Exception):
    """Raised inside the swarm to prove that cleanup also runs on failure."""


def host_usr_image(folder: Path) -> Path:
    """A tiny image whose /usr is the host's, bind-mounted read-only at run time.

    Debian merges /bin and /lib into /usr: four symlinks make its perl run.
    """
    archive = folder / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for link in ("bin", "sbin", "lib", "lib64"):
            entry = tarfile.TarInfo(link)
            entry.type, entry.linkname = tarfile.SYMTYPE, f"usr/{link}"
            tar.addfile(entry)
        for directory in ("usr", "etc", "tmp"):
            entry = tarfile.TarInfo(directory)
            entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(entry)
    return archive


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe's image as a tar (see host_usr_image)."""
    if os.geteuid() != 0:
        skip_or_fail("the multi-node harness needs root (namespaces, bridge, iptables)")
    for name, package in [
        ("dockerd", "docker.io"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("perl", "perl-base"),
    ]:
        find_binary(name, package)
    return host_usr_image(tmp_path_factory.mktemp("probe-image"))


def answers_across(swarm: SwarmNodes) -> dict[str, str]:
    """Address -> hostname answered, asked from one task to every task of a dnsrr
    service spread one task per node."""
    manager = swarm.manager
    manager.docker("network", "create", "--driver", "overlay", "probe")
    manager.docker(
        "service", "create", "--detach", "--name", "probe", "--network", "probe",
        "--endpoint-mode", "dnsrr", "--replicas", str(len(swarm.nodes)),
        "--replicas-max-per-node", "1", "--hostname", "{{.Node.Hostname}}",
        "--mount", "type=bind,source=/usr,target=/usr,readonly",
        IMAGE, "perl", "-e", SERVER,
    )  # fmt: skip
    label = "label=com.docker.swarm.service.name=probe"
    container = wait_until(
        lambda: manager.docker("ps", "-q", "--filter", label).split(), 60, "a task"
    )[0]
    ask = (
        f"perl -e '{CLIENT}' "
        "$(getent ahostsv4 tasks.probe | cut -d' ' -f1 | sort -u)"
    )

    def every_task_answers() -> dict[str, str]:
        result = manager.docker("exec", container, "sh", "-c", ask, check=False)
        found = dict(line.split() for line in result.splitlines() if line.strip())
        return found if len(found) == len(swarm.nodes) else {}

    return wait_until(every_task_answers, 60, "every task to answer")


def host_state() -> str:
    """Interfaces, namespaces, FORWARD rules and mounts of the host, as text."""
    commands = [
        ["ip", "-o", "link"],
        ["ip", "netns", "list"],
        ["iptables", "-S", "FORWARD"],
    ]
    outputs = [
        subprocess.run(  # nosec B603 B607 - fixed argv
            argv, capture_output=True, text=True, check=True
        ).stdout
        for argv in commands
    ]
    return "\n".join([*outputs, Path("/proc/mounts").read_text()])


@pytest.mark.slow
@pytest.mark.docker
def test_three_nodes_answer_across_the_overlay_and_leave_nothing(
    rootfs: Path,
) -> None:
    made: list[str] = []
    roots: list[Path] = []
    cgroups: list[str] = []
    with pytest.raises(BodyFailed):
        with swarm_nodes(3) as swarm:
            made += [swarm.bridge, *(n.netns for n in swarm.nodes)]
            made += [n.veth for n in swarm.nodes]
            roots += [n.root for n in swarm.nodes] + [swarm.nodes[0].root.parent]
            cgroups += [n.cgroup for n in swarm.nodes]
            assert swarm.node_states() == {
                name: ("Ready", "Active") for name in ("node1", "node2", "node3")
            }
            assert [n.hostname for n in swarm.workers] == ["node2", "node3"]
            for node in swarm.nodes:
                node.docker("import", str(rootfs), IMAGE)
            answers = answers_across(swarm)
            assert sorted(answers.values()) == ["node1", "node2", "node3"], answers
            raise BodyFailed
    state = host_state()
    assert not [name for name in made if name in state], state
    assert not [str(root) for root in roots if str(root) in state]
    assert not any(root.exists() for root in roots)
    assert not any(cgroup_dirs(cgroup) for cgroup in cgroups)


@pytest.mark.parametrize("argv", [["--nodes", "2"], ["--nodes"], ["--node", "3"]])
def test_the_e2e_refuses_a_bad_node_count_in_one_line(argv: list[str]) -> None:
    result = subprocess.run(  # nosec B603 - fixed argv
        [sys.executable, "-m", "e2e", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "--nodes 1|3|4|5" in result.stderr
