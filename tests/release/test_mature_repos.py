"""Mature repositories (issue 21): long histories, user git config, odd messages."""

from __future__ import annotations

import subprocess  # nosec B404 - fast-import builds the long histories
from pathlib import Path

import pytest

from tests.release.gitworld import Clone, everything, git


def fast_import_commits(clone: Clone, messages: list[bytes]) -> None:
    """Empty commits with these raw messages on the checked-out branch, in one go."""
    branch = clone.git("symbolic-ref", "HEAD")
    parent = clone.git("rev-parse", "HEAD")
    chunks = []
    for number, message in enumerate(messages):
        when = 1_700_000_000 + number
        chunks.append(
            f"commit {branch}\ncommitter Long <long@example.invalid> {when} +0000\n"
            f"data {len(message)}\n".encode()
            + message
            + (f"\nfrom {parent}\n\n".encode() if number == 0 else b"\n\n")
        )
    subprocess.run(  # nosec B603 B607 - fixed git argv in a test
        ["git", "fast-import", "--quiet", "--force"],
        cwd=clone.path,
        input=b"".join(chunks),
        check=True,
    )
    clone.git("reset", "-q", "--hard", "HEAD")


def test_a_first_release_over_5000_commits_tags(project: Clone) -> None:
    """The tag message (every commit) is far above one argument's 128 KiB limit."""
    messages = [
        f"fix: handle case {n} of the long history".encode() for n in range(5000)
    ]
    fast_import_commits(project, messages)
    assert project.bump() == "0.1.1"
    notes = project.git("tag", "-l", "--format=%(contents)", "v0.1.1")
    assert "handle case 0 of" in notes and "handle case 4999 of" in notes
