"""Find a Debian binary on PATH or in the sbin folders (not on every user's PATH)."""

from __future__ import annotations

import os
import shutil

SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class MissingBinary(RuntimeError):
    """A service binary is not installed; the message names the Debian package."""


def find_binary(name: str, package: str) -> str:
    """Path of executable `name`, or MissingBinary naming the package to install."""
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN_DIRS if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if path is None:
        raise MissingBinary(
            f"{name} not found: install the Debian package {package!r}"
            f" (apt-get install {package})"
        )
    return path
