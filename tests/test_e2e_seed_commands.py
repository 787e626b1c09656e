"""The e2e says what it does for each of the brief's Swarm commands (issue 26)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2e.seed_commands import SEED_COMMANDS, say_seed_commands

SWARM_PAGE = Path(__file__).resolve().parent.parent / "docs" / "SWARM.md"


def seed_block() -> list[str]:
    """The commands of docs/SWARM.md's first shell block: the brief's, in order."""
    pattern = re.compile(r"```sh\n(docker swarm init\n.*?)```", re.S)
    block = pattern.search(SWARM_PAGE.read_text())
    assert block is not None, "docs/SWARM.md lost the brief's commands"
    return block.group(1).splitlines()


def test_every_seed_command_of_the_docs_is_answered_for() -> None:
    answered = [command for command, _ in SEED_COMMANDS]
    for line in seed_block():
        command = line.split("| ", 1)[-1]  # `openssl rand ... | docker secret create`
        if command.startswith("docker secret create "):
            command = "docker secret create NAME -"
        assert command in answered, line


def test_the_e2e_prints_each_command_and_what_it_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say_seed_commands()
    printed = capsys.readouterr().out
    for command, what in SEED_COMMANDS:
        assert f"  {command}: {what}" in printed
