"""OpenSSH's sshd on a loopback port: one authorised key, a host key to pin.

It runs in a private mount namespace with a fresh tmpfs on /run, because sshd insists
on its privilege separation folder /run/sshd and must not create it on the host. Every
session gets `session_env` (e.g. DOCKER_HOST of a private engine), set by sshd itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devstack.commands import run
from devstack.binaries import find_binary
from devstack.ports import LOOPBACK, free_port, port_open
from devstack.processes import ServiceProcess

CONFIG = """\
ListenAddress {host}:{port}
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
"""


def keygen(path: Path) -> str:
    """A new ed25519 key pair at path (and path.pub); the public key line."""
    ssh_keygen = find_binary("ssh-keygen", "openssh-client")
    run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


class SshServer(ServiceProcess):
    """sshd on a free loopback port accepting one generated client key.

    After start: `client_key` (private key text), `known_hosts` (the pinned host key
    line) and `target` (user@127.0.0.1:PORT, for DOCKER_HOST=ssh://...).
    """

    name = "sshd"
    binary_name = "sshd"
    package = "openssh-server"
    start_timeout = 15.0

    def __init__(self, user: str, session_env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.unshare = find_binary("unshare", "util-linux")
        self.user = user
        self.port = free_port()
        self.session_env = dict(session_env or {})
        self.client_key = ""
        self.known_hosts = ""

    @property
    def target(self) -> str:
        """user@127.0.0.1:PORT."""
        return f"{self.user}@{LOOPBACK}:{self.port}"

    def prepare(self, folder: Path) -> None:
        host_key = keygen(folder / "host_key")
        client_public = keygen(folder / "client_key")
        self.client_key = (folder / "client_key").read_text()
        # ssh writes a non-default port as [host]:port in known_hosts.
        self.known_hosts = f"[{LOOPBACK}]:{self.port} {host_key}"
        (folder / "authorized_keys").write_text(client_public + "\n")
        config = CONFIG.format(host=LOOPBACK, port=self.port, folder=folder)
        config += "".join(f"SetEnv {k}={v}\n" for k, v in self.session_env.items())
        (folder / "sshd_config").write_text(config)

    def command(self, folder: Path) -> list[str]:
        inner = (
            "mount -t tmpfs rehearsal-run /run && mkdir -m 755 /run/sshd"
            f' && exec "{self.binary}" -D -E "{folder}/sshd.log"'
            f' -f "{folder}/sshd_config"'
        )
        return [self.unshare, "--mount", "--propagation", "private", "sh", "-c", inner]

    def ready(self) -> bool:
        return port_open(self.port)
