"""The base of every local service: a process in its own group and temporary folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess  # nosec B404 # starts the local services' binaries
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from devstack.binaries import find_binary
from devstack.waiting import TimedOut, wait_until


class StartFailed(RuntimeError):
    """A service exited or never became ready; the message says which and why, with
    the last lines the service wrote."""


LOG_TAIL_LINES = 20


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, indented, after a line naming it ("" if none)."""
    if path is None or not path.is_file():
        return ""
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    if not tail:
        return f"\n({path} is empty)"
    return f"\nlast lines of {path}:\n" + "\n".join(f"    {line}" for line in tail)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM `process`, SIGKILL its group after `timeout`; its exit status.

    Whatever is left of its process group (a child it did not reap) is killed too, so
    nothing a service started outlives it. `process` must lead its own group.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
    _kill_group(process.pid)
    return process.returncode


@contextmanager
def temporary_folder(name: str) -> Iterator[Path]:
    """A fresh folder `prework-NAME-*`, removed on exit, that any user can traverse.

    Unprivileged children (nginx's workers run as `nobody` under root) must be able to
    reach the files in it.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"prework-{name}-"))
    try:
        folder.chmod(0o711)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


class Service:
    """Started on entering a `with` block, stopped on leaving it, even on an error."""

    def start(self) -> Self:
        """Start and return once it serves."""
        raise NotImplementedError

    def stop(self) -> object:
        """Stop what start() started; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class ServiceProcess(Service):
    """A service started on entry and stopped on exit; subclass it per service.

    Subclasses set `name`, `binary_name` and its Debian `package`, and write `command`
    and `ready`; see the package docstring for the life cycle.
    """

    name = "service"
    binary_name = ""
    package = ""
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, log_path: Path | None = None) -> None:
        # Known before anything starts; a service that runs this Python names none.
        self.binary = ""
        if self.package:
            self.binary = find_binary(self.binary_name, self.package)
        self.log_path = log_path
        # Where its output went: log_path, else a file in its folder.
        self.output: Path | None = None
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, folder: Path) -> list[str]:
        """argv of the service, run with `folder` as its working directory."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the service serves."""
        raise NotImplementedError

    def prepare(self, folder: Path) -> None:
        """Write what the service reads before it starts (config files)."""

    def environment(self) -> dict[str, str] | None:
        """The service's environment; None inherits this process's."""
        return None

    def make_folder(self) -> Path:
        """Its fresh temporary folder (a subclass may place it elsewhere)."""
        folder = Path(tempfile.mkdtemp(prefix=f"prework-{self.name}-"))
        folder.chmod(0o711)  # as temporary_folder's, for unprivileged children
        return folder

    def workdir(self, folder: Path) -> Path:
        """Where the process runs; its temporary folder unless a service says."""
        return folder

    def start(self) -> Self:
        """Start the service and return once `ready()`; StartFailed otherwise."""
        folder = self.make_folder()
        self.folder = folder
        try:
            self.prepare(folder)
            self.process = self._spawn(folder)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, folder: Path) -> subprocess.Popen[bytes]:
        self.output = self.log_path or folder / f"{self.name}.output"
        with self.output.open("wb") as log:
            return subprocess.Popen(  # nosec B603 # argv built by the service class
                self.command(folder),
                cwd=self.workdir(folder),
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, stopped as one
            )

    def _wait_ready(self) -> None:
        process = self.process
        if process is None:
            raise StartFailed(f"{self.name} was never started")
        try:
            wait_until(
                lambda: process.poll() is not None or self.ready(),
                self.start_timeout,
                f"{self.name} to be ready",
            )
        except TimedOut as error:
            raise StartFailed(f"{error}{log_tail(self.output)}") from None
        if process.poll() is not None:
            raise StartFailed(
                f"{self.name} exited with status {process.returncode}"
                f"{log_tail(self.output)}"
            )

    def stop(self) -> int:
        """Stop the service if it runs and remove its folder; its exit status."""
        code = 0
        if self.process is not None:
            code = stop_process(self.process, self.stop_timeout)
            self.process = None
        if self.folder is not None:
            self.cleanup(self.folder)
            self.folder = None
        return code

    def cleanup(self, folder: Path) -> None:
        """Remove the temporary folder once the process is gone."""
        shutil.rmtree(folder, ignore_errors=True)
