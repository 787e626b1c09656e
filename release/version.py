"""Version arithmetic on VERSION's own spelling: `X.Y.Z` or `X.Y.Z-dev.N`.

Ordering is `packaging`'s (PEP 440) order; the spelling is never packaging's
normalised `X.Y.Z.devN`, so VERSION stays a valid SemVer and OCI image tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from functools import total_ordering

from packaging.version import Version as Pep440Version

EXPECTED_FORMS = "X.Y.Z or X.Y.Z-dev.N (digits without leading zeros)"
_NUMBER = r"(0|[1-9][0-9]*)"
_SPELLING = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-dev\.{_NUMBER})?")


def version_line(text: str) -> str:
    """A version file's one line: its line ending (LF or CRLF, optional) removed.

    Every reader of VERSION (the work tree, a commit, a tag) goes through this,
    so a file from a Windows checkout is judged the same by every command.
    """
    return text.removesuffix("\n").removesuffix("\r")


class MalformedVersion(ValueError):
    """Text that is neither `X.Y.Z` nor `X.Y.Z-dev.N`."""


class BumpLevel(IntEnum):
    """How far a set of changes moves a release: patch < minor < major."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3


@total_ordering
@dataclass(frozen=True, eq=True)
class Version:
    """A release `X.Y.Z` (dev is None) or a development build `X.Y.Z-dev.N`."""

    major: int
    minor: int
    patch: int
    dev: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Read `X.Y.Z` or `X.Y.Z-dev.N`; raise MalformedVersion for anything else."""
        match = _SPELLING.fullmatch(text)
        if match is None:
            raise MalformedVersion(text)
        major, minor, patch, dev = match.groups()
        return cls(
            int(major), int(minor), int(patch), None if dev is None else int(dev)
        )

    def __str__(self) -> str:
        release = f"{self.major}.{self.minor}.{self.patch}"
        return release if self.dev is None else f"{release}-dev.{self.dev}"

    @property
    def is_release(self) -> bool:
        """True for `X.Y.Z`, False for a development build."""
        return self.dev is None

    @property
    def release(self) -> Version:
        """The release this version is (or leads to): `X.Y.Z` without `-dev.N`."""
        return Version(self.major, self.minor, self.patch)

    def bumped(self, level: BumpLevel) -> Version:
        """The release after this one's release part at `level`."""
        if level is BumpLevel.MAJOR:
            return Version(self.major + 1, 0, 0)
        if level is BumpLevel.MINOR:
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def dev_build(self, number: int) -> Version:
        """Development build `number` of this version's release."""
        return Version(self.major, self.minor, self.patch, number)

    def pep440(self) -> Pep440Version:
        """The same version as packaging reads it (`1.3.0-dev.5` is `1.3.0.dev5`)."""
        return Pep440Version(str(self))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.pep440() < other.pep440()
