"""Find the work tree and read or write its VERSION file."""

from __future__ import annotations

from pathlib import Path

from release.errors import Refusal
from release.settings import Settings
from release.version import EXPECTED_FORMS, MalformedVersion, Version, version_line


def find_root(start: Path) -> Path:
    """The work tree root containing `start` (the nearest folder with `.git`)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    raise Refusal(f"{start} is not inside a git work tree")


def read_version(root: Path, settings: Settings) -> Version:
    """VERSION's content; a Refusal naming the file, the text and the expected forms."""
    path = root / settings.version_file
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Refusal(f"{path}: cannot read the version ({error})") from error
    line = version_line(text)  # exactly one line, its line ending optional
    try:
        return Version.parse(line)
    except MalformedVersion:
        raise Refusal(
            f"{path}: {line!r} is not a version; expected {EXPECTED_FORMS} "
            "alone on one line"
        ) from None


def write_version(root: Path, settings: Settings, version: Version) -> None:
    """Write VERSION as exactly one line."""
    (root / settings.version_file).write_text(f"{version}\n", encoding="utf-8")
