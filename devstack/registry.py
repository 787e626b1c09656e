"""Debian's docker-registry (distribution 2.x) on loopback, storage in its folder.

Plain HTTP on 127.0.0.1, which every Docker engine accepts without TLS (loopback is
an insecure registry by default). Given `users` (name -> password), it asks for them
as GitHub's registry does: htpasswd basic authentication (bcrypt hashes, the only kind
distribution reads); a request without one of them is answered 401. htpasswd has no
scopes: every user may push and pull.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.ports import LOOPBACK, free_port
from devstack.processes import ServiceProcess

CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {folder}/data
  delete:
    enabled: false
http:
  addr: {host}:{port}
  secret: {secret}
"""
AUTH = """\
auth:
  htpasswd:
    realm: prework-registry
    path: {folder}/htpasswd
"""
# What `docker push` stores for a single-platform image, and so what a HEAD answers.
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def htpasswd(users: Mapping[str, str]) -> str:
    """htpasswd lines with bcrypt hashes (cost 5: seconds matter here, not strength)."""
    import bcrypt  # the rehearse group's; only an authenticating registry needs it

    return "".join(
        f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()}\n"
        for name, password in users.items()
    )


class RegistryServer(ServiceProcess):
    """docker-registry on a free loopback port; `address` is HOST:PORT for tags."""

    name = "registry"
    binary_name = "docker-registry"
    package = "docker-registry"

    def __init__(
        self, port: int | None = None, users: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self.port = port or free_port()
        self.users = dict(users or {})

    @property
    def address(self) -> str:
        """127.0.0.1:PORT, the registry part of an image name."""
        return f"{LOOPBACK}:{self.port}"

    def prepare(self, folder: Path) -> None:
        config = CONFIG.format(
            folder=folder, host=LOOPBACK, port=self.port, secret=secrets.token_hex(16)
        )
        if self.users:
            (folder / "htpasswd").write_text(htpasswd(self.users))
            config += AUTH.format(folder=folder)
        (folder / "config.yml").write_text(config)

    def command(self, folder: Path) -> list[str]:
        return [self.binary, "serve", str(folder / "config.yml")]

    def _request(self, path: str, method: str = "GET") -> urllib.request.Request:
        """A v2 API request, as the first user when the registry asks for one."""
        request = urllib.request.Request(f"http://{self.address}/v2/{path}")
        request.method = method
        request.add_header("Accept", MANIFEST_TYPE)
        for name, password in list(self.users.items())[:1]:
            basic = base64.b64encode(f"{name}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        return request

    @staticmethod
    def _open(request: urllib.request.Request) -> Any:
        """The answer to a request (HTTPError for a 4xx/5xx)."""
        return urllib.request.urlopen(request, timeout=5)  # nosec B310 - loopback

    def _get(self, path: str) -> dict[str, Any]:
        """A JSON object from the v2 API (an empty one when it answers otherwise)."""
        with self._open(self._request(path)) as answer:
            found = json.load(answer)
        return found if isinstance(found, dict) else {}

    def ready(self) -> bool:
        try:
            self._get("")
            return True
        except OSError:
            return False

    def repositories(self) -> list[str]:
        """Every repository that holds an image."""
        catalog = self._get("_catalog?n=1000")
        return sorted(catalog.get("repositories") or [])

    def tags(self, repository: str) -> list[str]:
        """Every tag of one repository (empty when it has none)."""
        try:
            listing = self._get(f"{repository}/tags/list")
        except OSError:
            return []
        return sorted(listing.get("tags") or [])

    def digest(self, repository: str, tag: str) -> str:
        """The manifest digest (sha256:...) the tag points at; "" when it has none."""
        request = self._request(f"{repository}/manifests/{tag}", "HEAD")
        try:
            with self._open(request) as answer:
                return str(answer.headers.get("Docker-Content-Digest", ""))
        except urllib.error.HTTPError:
            return ""
