"""Messages for people: on stderr, since stdout carries only the version or notes."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """One line on stderr, prefixed with the tool's name."""
    print(f"release: {message}", file=sys.stderr)
