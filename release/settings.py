"""Settings from `[tool.release]` in the repository's pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from release.errors import Refusal
from release.version import Version

LINE_FIELD = "{line}"
_LINE = r"(?P<major>0|[1-9][0-9]*)(?:\.(?P<minor>0|[1-9][0-9]*))?\.x"


class BranchRole(Enum):
    """What a push to a branch does to VERSION."""

    DEV = "dev"
    RELEASE = "release"
    OTHER = "other"


@dataclass(frozen=True)
class ReleaseLine:
    """The versions a maintenance branch may release: `1.x` or `1.4.x`."""

    major: int
    minor: int | None = None

    def __str__(self) -> str:
        minor = "" if self.minor is None else f"{self.minor}."
        return f"{self.major}.{minor}x"

    def contains(self, version: Version) -> bool:
        """True when `version` belongs to this line."""
        return version.major == self.major and self.minor in (None, version.minor)


@dataclass(frozen=True)
class Settings:
    """The repository's release settings; defaults match VERSIONING.md."""

    dev_branch: str = "dev"
    release_branches: tuple[str, ...] = ("master", "main")
    tag_prefix: str = "v"
    changelog: str = "CHANGELOG.md"
    version_file: str = "VERSION"
    # Maintenance branches: `{line}` is `N.x` or `N.M.x`; "" turns them off.
    maintenance_branches: str = f"release/{LINE_FIELD}"

    def role_of(self, branch: str) -> BranchRole:
        """The role of `branch`: dev, a release branch, or anything else.

        A maintenance branch is a release branch whose releases stay in its line.
        """
        if branch == self.dev_branch:
            return BranchRole.DEV
        if branch in self.release_branches or self.line_of(branch) is not None:
            return BranchRole.RELEASE
        return BranchRole.OTHER

    def line_of(self, branch: str) -> ReleaseLine | None:
        """The release line of a maintenance branch (None for any other branch)."""
        if not self.maintenance_branches or branch in self.release_branches:
            return None
        before, _, after = self.maintenance_branches.partition(LINE_FIELD)
        match = re.fullmatch(re.escape(before) + _LINE + re.escape(after), branch)
        if match is None:
            return None
        minor = match["minor"]
        return ReleaseLine(int(match["major"]), None if minor is None else int(minor))


_STRING_KEYS = {
    "dev-branch": "dev_branch",
    "tag-prefix": "tag_prefix",
    "changelog": "changelog",
    "version-file": "version_file",
    "maintenance-branches": "maintenance_branches",
}


def _release_table(pyproject: Path) -> dict[str, object]:
    if not pyproject.is_file():
        return {}
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Refusal(f"{pyproject}: not valid TOML ({error})") from error
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise Refusal(f"{pyproject}: [tool] must be a table")
    table = tool.get("release", {})
    if not isinstance(table, dict):
        raise Refusal(f"{pyproject}: [tool.release] must be a table")
    return table


# A tag prefix may be empty: tags that are exactly a version (commitizen's `1.2.3`).
_MAY_BE_EMPTY = {"tag-prefix", "maintenance-branches"}


def _string(pyproject: Path, table: dict[str, object], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (not value and key not in _MAY_BE_EMPTY):
        raise Refusal(f"{pyproject}: [tool.release] {key} must be a non-empty string")
    return value


def load_settings(root: Path) -> Settings:
    """Settings from root/pyproject.toml; defaults for every key it leaves out."""
    pyproject = root / "pyproject.toml"
    table = _release_table(pyproject)
    defaults = Settings()
    unknown = sorted(set(table) - {"release-branches", *_STRING_KEYS})
    if unknown:
        known = ", ".join(["release-branches", *_STRING_KEYS])
        raise Refusal(
            f"{pyproject}: unknown [tool.release] setting {unknown[0]!r} "
            f"(known: {known})"
        )
    branches = table.get("release-branches", list(defaults.release_branches))
    if not isinstance(branches, list) or not all(
        isinstance(name, str) and name for name in branches
    ):
        raise Refusal(f"{pyproject}: [tool.release] release-branches must list names")
    strings = {
        attribute: _string(pyproject, table, key, getattr(defaults, attribute))
        for key, attribute in _STRING_KEYS.items()
    }
    maintenance = strings["maintenance_branches"]
    if maintenance and maintenance.count(LINE_FIELD) != 1:
        raise Refusal(
            f"{pyproject}: [tool.release] maintenance-branches must hold "
            f"{LINE_FIELD} once (e.g. 'release/{LINE_FIELD}' for release/1.x)"
        )
    return Settings(
        maintenance_branches=maintenance,
        dev_branch=strings["dev_branch"],
        release_branches=tuple(branches),
        tag_prefix=strings["tag_prefix"],
        changelog=strings["changelog"],
        version_file=strings["version_file"],
    )
