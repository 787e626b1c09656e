"""The rehearsal's production: its own dockerd in swarm mode, reached over SSH, and a
registry, as release.yml reaches them on GitHub.

The engine is always this rehearsal's own (never the developer's DOCKER_HOST); the
stack's base images are the official ones when a registry answers, else the Debian
stand-ins the e2e builds, named to the runner through IMAGE_BUILD_ARGS and the stack's
REDIS_IMAGE / NGINX_IMAGE / EDGE_IMAGE variables.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Self, TypeVar

import requests

from devstack.commands import docker
from devstack.harness import STORE_OVERLAY, WEB, create_secrets
from devstack.dockerd import Dockerd
from devstack.ports import LOOPBACK, free_port
from devstack.processes import Service
from devstack.registry import RegistryServer
from devstack.sshd import SshServer
from e2e import images

T = TypeVar("T")

# The registry's two accounts, as docs/RELEASING.md has users create them: the image
# job's push account and the production environment's read account.
PUSH_USER = "rehearsal-push"
READ_USER = "rehearsal-read"


def running(part: T | None, what: str) -> T:
    """The part, or RuntimeError when production has not started it."""
    if part is None:
        raise RuntimeError(f"{what} is not running")
    return part


@dataclass
class Production(Service):
    """Engine + swarm, registry and sshd, started together and stopped together."""

    stack: ExitStack = field(default_factory=ExitStack)
    registry: RegistryServer | None = None
    sshd: SshServer | None = None
    base: images.BaseImages | None = None
    http_port: int = 0
    socket: str = ""
    # Registry user -> password (act masks secrets: random ones mask nothing else).
    accounts: dict[str, str] = field(
        default_factory=lambda: {
            user: secrets.token_hex(16) for user in (PUSH_USER, READ_USER)
        }
    )

    def start(self) -> Self:
        """Start everything; on any failure stop what already started."""
        try:
            self.stack.enter_context(Dockerd())
            self.socket = os.environ["DOCKER_HOST"]
            docker("swarm", "init", "--advertise-addr", LOOPBACK)
            self.registry = self.stack.enter_context(
                RegistryServer(users=self.accounts)
            )
            self.sshd = self.stack.enter_context(
                SshServer(getpass.getuser(), {"DOCKER_HOST": self.socket})
            )
            self.http_port = free_port()
            self.base = images.base_images()
            create_secrets()  # under their default names, as an operator would
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop sshd, the registry and dockerd (its swarm, stack and images go too)."""
        self.stack.close()

    @property
    def registry_address(self) -> str:
        """HOST:PORT of the registry."""
        return running(self.registry, "the registry").address

    @property
    def ssh_target(self) -> str:
        """user@127.0.0.1:PORT of sshd."""
        return running(self.sshd, "sshd").target

    @property
    def url(self) -> str:
        """The stack's public URL (nginx, host-mode published on loopback)."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def image_name(self, repository: str) -> str:
        """The image repository in the local registry, as IMAGE_NAME gives it."""
        return f"{self.registry_address}/{repository.lower()}/prework-flask-app"

    def variables(self, repository: str) -> dict[str, str]:
        """Repository variables the workflows read in this production."""
        base = running(self.base, "production")
        found = {
            "IMAGE_NAME": self.image_name(repository),
            "PUBLIC_URL": self.url,
            "PREWORK_HTTP_PORT": str(self.http_port),
            # Two replicas still make "every replica" mean something; each deploy's
            # rolling update paces one replica at a time.
            "WEB_REPLICAS": "2",
            # The registry asks for these accounts; the secrets are registry_secrets().
            "REGISTRY_PUSH_USERNAME": PUSH_USER,
            "REGISTRY_USERNAME": READ_USER,
            # No MongoDB in this production: the deploy adds the embedded store's
            # overlay (read by a release.yml that has DEPLOY_COMPOSE_FILES).
            "DEPLOY_COMPOSE_FILES": f"docker-compose.yml {STORE_OVERLAY}",
        }
        if base.standins:
            found.update(
                REDIS_IMAGE=base.redis, NGINX_IMAGE=base.nginx, EDGE_IMAGE=base.nginx
            )
            found["IMAGE_BUILD_ARGS"] = (
                f"BASE_IMAGE={base.python}"
                " CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"
            )
        return found

    def registry_secrets(self) -> dict[str, str]:
        """REGISTRY_PUSH_TOKEN (the image job) and REGISTRY_READ_TOKEN (the deploy)."""
        return {
            "REGISTRY_PUSH_TOKEN": self.accounts[PUSH_USER],
            "REGISTRY_READ_TOKEN": self.accounts[READ_USER],
        }

    def runner_env(self) -> dict[str, str]:
        """The runner's own Docker engine (the image job builds and pushes there)."""
        return {"DOCKER_HOST": self.socket}

    def ssh_secrets(self) -> dict[str, str]:
        """SWARM_SSH_KEY, SWARM_SSH_KNOWN_HOSTS and SWARM_SSH_TARGET for deploy."""
        sshd = running(self.sshd, "sshd")
        return {
            "SWARM_SSH_KEY": sshd.client_key.strip(),
            "SWARM_SSH_KNOWN_HOSTS": sshd.known_hosts,
            "SWARM_SSH_TARGET": sshd.target,
        }

    def image_tags(self, repository: str) -> list[str]:
        """Every tag of the app's image in the registry."""
        name = self.image_name(repository).split("/", 1)[1]
        return running(self.registry, "the registry").tags(name)

    def running_versions(self) -> list[str]:
        """/version of every running web replica, asked inside each container."""
        label = f"label=com.docker.swarm.service.name={WEB}"
        ids = docker("ps", "-q", "--filter", label).split()
        probe = (
            "import json, urllib.request;"
            "print(json.load(urllib.request.urlopen("
            "'http://127.0.0.1:8000/version', timeout=3))['version'])"
        )
        return sorted(docker("exec", cid, "python", "-c", probe).strip() for cid in ids)

    def service_image(self) -> str:
        """The web service's image as the swarm has it."""
        spec = json.loads(docker("service", "inspect", WEB))[0]
        return str(spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])

    def through_nginx(self, path: str) -> requests.Response:
        """GET the path through the stack's nginx."""
        return requests.get(f"{self.url}{path}", timeout=10)
