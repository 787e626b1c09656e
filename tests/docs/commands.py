"""How each documented command runs here, and what proves it worked.

Every command runs as written (bash, in the page's `Terminal`); a few need more than an
exit status to prove anything, or a place of their own:

- the quickstart's set-up line: in a fresh clone, once; every page starts from the
  virtual environment it made, as a reader who followed the README would;
- `nox -s serve [-- --proxy]`: started, asked for /healthz and a note written and read
  back (through nginx with `--proxy`), then stopped with Ctrl-C (SIGINT), exit 0;
- the brief's flow (`... pip install -r requirements.txt && pytest`): in a fresh clone
  of its own, since it makes `venv/` and runs the whole suite;
- `python -m release ...`: in a scratch repository (a bare origin, `master` at v0.1.0,
  `dev` with one `feat:` commit), the tool's package taken from the fresh clone. A
  synopsis line (`next [--branch B]`) runs without its optional parts, and each option
  it shows must be one the subcommand's `--help` lists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess  # nosec B404 # starts `nox -s serve` as a reader would
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import TimedOut, find_binary, free_port, wait_until
from devstack.ports import LOOPBACK
from tests.docs.terminal import OUTPUT_LINES, CommandError, Terminal, fresh_clone
from tests.release.gitworld import isolated_git_environment, make_origin

SETUP_MARK = "python3 -m venv .venv"
BRIEF_MARK = "pip install -r requirements.txt"
# The first `nox -s serve` builds its environment (an install of the service).
SERVE_TIMEOUT = 300.0
OPTIONAL = re.compile(r"\s*\[[^\]]*\]")
PLACEHOLDER_FILE = "FILE"


@dataclass(frozen=True)
class Command:
    """One command of a block: its text as written and the file line it starts on."""

    text: str
    line: int

    @property
    def argv(self) -> list[str]:
        """The words, comments dropped (how the shell would split them)."""
        return shlex.split(self.text, comments=True)


def commands(source: str, first_line: int) -> list[Command]:
    """The commands of a block whose source starts on `first_line`; a line ending in
    a backslash continues on the next, as in the shell."""
    found: list[Command] = []
    pending: list[str] = []
    start = first_line
    for number, line in enumerate(source.splitlines(), start=first_line):
        if not pending:
            start = number
        pending.append(line)
        if line.endswith("\\"):
            continue
        text = "\n".join(pending)
        pending = []
        if text.strip() and not text.lstrip().startswith("#"):
            found.append(Command(text, start))
    return found


class Workspace:
    """The fresh clones one test run shares, and the quickstart's terminal state."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._clone: Path | None = None
        self._setups: dict[str, Terminal] = {}

    @property
    def clone(self) -> Path:
        """The fresh clone every page's commands run in."""
        if self._clone is None:
            self._clone = fresh_clone(self.base / "clone")
        return self._clone

    def set_up(self, line: str) -> Terminal:
        """Run a set-up line in the fresh clone once; the terminal it leaves behind."""
        if line not in self._setups:
            terminal = Terminal(self.clone)
            terminal.run(line)
            self._setups[line] = terminal
        return self._setups[line].copy()

    def quickstart(self, setup_line: str) -> Terminal:
        """A terminal in the fresh clone, with the quickstart's venv active."""
        return self.set_up(setup_line)


@dataclass
class Page:
    """A reader working through one page: their shell, and the page's scratch
    repository once a `python -m release` line needs one."""

    terminal: Terminal
    scratch: ScratchRepository | None = None


def run_command(workspace: Workspace, page: Page, command: Command) -> None:
    """Run one command the way its kind needs, in the page's terminal."""
    argv = command.argv
    if SETUP_MARK in command.text:
        page.terminal = workspace.set_up(command.text)
    elif BRIEF_MARK in command.text:
        Terminal(fresh_clone(workspace.base / "brief")).run(command.text)
    elif argv[:3] == ["nox", "-s", "serve"]:
        check_serve(page.terminal, command, proxy="--proxy" in argv)
    elif argv[:3] == ["python", "-m", "release"]:
        run_release(workspace, page, command)
    else:
        page.terminal.run(command.text)


def http(
    method: str, url: str, body: object | None = None
) -> tuple[int, dict[str, str], str]:
    """One request on loopback: status, headers, body text (errors are answers)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # nosec B310
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def note_round_trip(base: str) -> dict[str, str]:
    """Write a note and read it back; the read's headers."""
    status, headers, text = http(
        "POST", f"{base}/api/notes", {"title": "docs", "body": "as the README says"}
    )
    if status != 201:
        raise CommandError(f"POST /api/notes answered {status}: {text}")
    status, read_headers, text = http("GET", f"{base}{headers['Location']}")
    if status != 200 or json.loads(text)["body"] != "as the README says":
        raise CommandError(f"GET {headers['Location']} answered {status}: {text}")
    return read_headers


def check_serve(terminal: Terminal, command: Command, proxy: bool) -> None:
    """Start the command, see it answer (through nginx with --proxy), Ctrl-C it."""
    if proxy:
        find_binary("nginx", "nginx")  # MissingBinary: the suite's one rule decides
    app_port, http_port = free_port(), free_port()
    env = {
        **terminal.env,
        "PREWORK_APP_PORT": str(app_port),
        "PREWORK_HTTP_PORT": str(http_port),
    }
    base = f"http://{LOOPBACK}:{http_port if proxy else app_port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # nosec B603 B607 # the docs' own command
            ["bash", "-c", command.text],
            cwd=terminal.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches its whole group, as in a terminal
        )
        try:
            wait_until(
                lambda: process.poll() is not None
                or http("GET", f"{base}/healthz")[0] == 200,
                SERVE_TIMEOUT,
                f"{base}/healthz to answer 200",
            )
            if process.poll() is not None:
                raise CommandError(f"exited {process.returncode} before answering")
            headers = note_round_trip(base)
            if proxy and headers.get("Server") != "nginx":
                raise CommandError(f"not answered through nginx: {headers}")
        except BaseException as error:
            stop_with_ctrl_c(process)
            log.seek(0)
            tail = "\n".join(log.read().decode().splitlines()[-OUTPUT_LINES:])
            raise CommandError(f"{error}\n{tail}") from None
        status = stop_with_ctrl_c(process)
        if status != 0:
            log.seek(0)
            tail = "\n".join(log.read().decode().splitlines()[-OUTPUT_LINES:])
            raise CommandError(f"Ctrl-C: exit status {status}\n{tail}")


def stop_with_ctrl_c(process: subprocess.Popen[bytes]) -> int:
    """SIGINT to the command's group, as Ctrl-C sends; SIGKILL if it hangs on.

    The command's exit is not the end: whatever it started (gunicorn's master and
    workers, nginx) must be gone too, or the next `nox -s serve` finds its port taken.
    """
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return -1
    try:
        wait_until(lambda: not group_alive(process.pid), 5, "its group to end")
    except TimedOut:
        left = subprocess.run(  # nosec B603 B607 # names what is left, for the message
            ["pgrep", "-a", "-g", str(process.pid)], capture_output=True, text=True
        ).stdout
        os.killpg(process.pid, signal.SIGKILL)
        raise CommandError(f"exited, leaving processes running:\n{left}") from None
    return process.returncode


def group_alive(group: int) -> bool:
    """True while a process of the group is left (signal 0 checks, sends nothing)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


class ScratchRepository:
    """A bare origin, `master` at v0.1.0, `dev` with one feat: commit checked out."""

    def __init__(self, base: Path, package_root: Path) -> None:
        base.mkdir(parents=True)
        home = base / "home"
        home.mkdir()
        self.git_env = isolated_git_environment(home)
        with pytest.MonkeyPatch.context() as patch:  # gitworld's git reads os.environ
            for name, value in self.git_env.items():
                patch.setenv(name, value)
            clone = make_origin(base)
            clone.git("checkout", "-q", "-b", "dev")
            (clone.path / "notes.txt").write_text("documented\n")
            clone.git("add", "notes.txt")
            clone.commit("feat: an example the docs' commands version")
            clone.git("push", "-q", "-u", "origin", "dev")
        self.path = clone.path
        self.package_root = package_root

    def terminal(self, reader: Terminal) -> Terminal:
        """The reader's shell in this repository, the tool from the fresh clone."""
        env = {
            name: value
            for name, value in reader.env.items()
            if not name.startswith("GITHUB_")  # a CI's own run is not this one
        }
        env.update(self.git_env, PYTHONPATH=str(self.package_root))
        return Terminal(self.path, env)


def run_release(workspace: Workspace, page: Page, command: Command) -> None:
    """A `python -m release` line against the page's scratch repository."""
    if page.scratch is None:
        base = Path(tempfile.mkdtemp(prefix="scratch-", dir=workspace.base))
        page.scratch = ScratchRepository(base / "repository", workspace.clone)
    scratch = page.scratch
    shell = scratch.terminal(page.terminal)
    text = shlex.join(command.argv)
    if "[" not in text and PLACEHOLDER_FILE not in command.argv:
        shell.run(command.text)
        return
    # A synopsis: every option it shows exists, and the bare form runs.
    subcommand = command.argv[3]
    helped = shell.run(f"python -m release {subcommand} --help")
    for option in re.findall(r"\[(--[a-z-]+)", text):
        if option not in helped:
            raise CommandError(f"`{subcommand} --help` does not list {option}")
    bare = OPTIONAL.sub("", " ".join(command.argv))
    if PLACEHOLDER_FILE in bare.split():
        message = scratch.path / "COMMIT_EDITMSG.example"
        message.write_text("docs: a message the commit-msg hook accepts\n")
        words = bare.split()
        bare = " ".join(str(message) if word == "FILE" else word for word in words)
    shell.run(bare)
