"""Where the docs' commands run: a fresh copy of the checkout and a reader's shell.

A reader types the commands of one page in one terminal, in order: a `cd`, an activated
virtual environment or an exported variable carries on to the next command. `Terminal`
keeps exactly that (working folder and environment) between the commands of one
document, each command run by bash as written.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # runs the docs' commands, as a reader's shell would
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Long enough for the brief's flow (an install and the whole suite) on 2 shared cores.
COMMAND_TIMEOUT = 1800.0
# How much of a failed command's output a failure shows.
OUTPUT_LINES = 40


class CommandError(AssertionError):
    """A documented command failed; the message is its last output lines."""


def fresh_clone(where: Path) -> Path:
    """A clone of this checkout plus its uncommitted and untracked (not ignored) files:
    what a new user would have, with the change under test in it."""
    target = where / "prework"
    subprocess.run(  # nosec B603 B607 # fixed argv
        ["git", "clone", "-q", str(ROOT), str(target)], check=True
    )
    listed = subprocess.run(  # nosec B603 B607 # fixed argv
        ["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
        else:  # deleted in the work tree
            (target / name).unlink(missing_ok=True)
    return target


def reader_environment() -> dict[str, str]:
    """This process's environment without the test run's own virtual environment:
    `python3` is the machine's, as on a fresh machine."""
    env = dict(os.environ)
    own_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if part != own_bin
    )
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "NOX_CURRENT_SESSION"):
        env.pop(name, None)
    return env


@dataclass
class Terminal:
    """One reader's shell: its working folder and environment carry on."""

    cwd: Path
    env: dict[str, str] = field(default_factory=reader_environment)

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run `command` as written with bash; keep its `cd` and variables; output."""
        with tempfile.TemporaryDirectory(prefix="prework-docs-") as state:
            env_file, cwd_file = Path(state, "env"), Path(state, "cwd")
            script = (
                f"{command}\n__status=$?\n"
                f'env -0 > "{env_file}"; pwd > "{cwd_file}"; exit $__status\n'
            )
            done = subprocess.run(  # nosec B603 B607 # the docs' own command
                ["bash", "-o", "pipefail", "-c", script],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # interleaved, as the reader sees them
                text=True,
                timeout=timeout,
                check=False,
            )
            output = done.stdout
            if done.returncode != 0:
                tail = "\n".join(output.splitlines()[-OUTPUT_LINES:])
                raise CommandError(f"exit status {done.returncode}\n{tail}")
            pairs = env_file.read_text().split("\0")
            self.env = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
            self.cwd = Path(cwd_file.read_text().strip())
        return output

    def copy(self) -> Terminal:
        """Another terminal in the same state (a page starts from the quickstart's)."""
        return Terminal(self.cwd, dict(self.env))
