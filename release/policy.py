"""What a push to dev or to a release branch does to VERSION (VERSIONING.md rules)."""

from __future__ import annotations

from collections.abc import Iterable

from release.version import BumpLevel, Version

ZERO = Version(0, 0, 0)


class PlanError(Exception):
    """A rule of the contract forbids any version here (the CLI exits 2)."""


class NotAbove(PlanError):
    """The next version would not be above VERSION or the newest release tag."""


def next_dev_version(
    current: Version,
    newest_release: Version | None,
    level: BumpLevel,
    built: Iterable[Version] = (),
) -> Version:
    """The next development build after `current` on the dev branch.

    `built` are the builds the tool already committed since the newest release:
    a person may revert such a commit, but its version (an image tag) stays used.
    """
    if newest_release is None:
        # No tag yet: a release VERSION counts as released; a dev build's own
        # target stands (0.1.0-dev.3 goes on to 0.1.0-dev.4).
        newest_release = current if current.is_release else ZERO
    target = newest_release.bumped(level)
    if not current.is_release:
        target = max(target, current.release)
    if current.dev is not None and current.release == target:
        candidate = target.dev_build(current.dev + 1)
    else:
        candidate = target.dev_build(1)
    used = [version.dev or 0 for version in built if version.release == target]
    if used and candidate.dev is not None and candidate.dev <= max(used):
        candidate = target.dev_build(max(used) + 1)
    if candidate <= current:
        raise NotAbove(
            f"the next dev build {candidate} would not be above VERSION {current}"
        )
    return candidate


def next_release_version(
    current: Version, newest_release: Version | None, level: BumpLevel, tag_prefix: str
) -> Version:
    """The release a release branch makes from `current`; above every release tag."""
    candidate = current.bumped(level) if current.is_release else current.release
    if newest_release is not None and candidate <= newest_release:
        raise NotAbove(
            f"release {candidate} would not be above the newest release tag "
            f"{tag_prefix}{newest_release}"
        )
    return candidate
