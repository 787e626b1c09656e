"""The two ways the release tool stops short of success."""

from __future__ import annotations


class Refusal(Exception):
    """Bad input or an unsafe repository state: one line, exit 2, nothing written."""


class ReleaseFailure(Exception):
    """An operation that was attempted and failed (a push that kept losing races)."""
