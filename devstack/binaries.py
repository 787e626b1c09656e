"""Find a Debian binary on PATH or in the sbin folders (not on every user's PATH)."""

from __future__ import annotations

import os
import shutil

SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class MissingBinary(RuntimeError):
    """A service binary is not installed; the message names the Debian package."""


def find_binary(name: str, package: str, how: str = "") -> str:
    """Path of executable `name`, or MissingBinary naming the package to install
    (Debian's, unless `how` says where else it comes from)."""
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN_DIRS if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if path is None:
        how = how or f"the Debian package {package!r} (apt-get install {package})"
        raise MissingBinary(f"{name} not found: install {how}")
    return path
