"""Debian's docker-registry (distribution 2.x) on loopback, storage in its folder.

Plain HTTP on 127.0.0.1, which every Docker engine accepts without TLS (loopback is
an insecure registry by default). No authentication: `docker login` to it succeeds.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
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


class RegistryServer(ServiceProcess):
    """docker-registry on a free loopback port; `address` is HOST:PORT for tags."""

    name = "registry"
    binary_name = "docker-registry"
    package = "docker-registry"

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()

    @property
    def address(self) -> str:
        """127.0.0.1:PORT, the registry part of an image name."""
        return f"{LOOPBACK}:{self.port}"

    def prepare(self, folder: Path) -> None:
        config = CONFIG.format(
            folder=folder, host=LOOPBACK, port=self.port, secret=secrets.token_hex(16)
        )
        (folder / "config.yml").write_text(config)

    def command(self, folder: Path) -> list[str]:
        return [self.binary, "serve", str(folder / "config.yml")]

    def _get(self, path: str) -> dict[str, Any]:
        """A JSON object from the v2 API (an empty one when it answers otherwise)."""
        url = f"http://{self.address}/v2/{path}"
        with urllib.request.urlopen(url, timeout=5) as answer:  # nosec B310 - loopback
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
