"""The docs' commands are tests: `nox -s docs`.

`python -m pytest -p tests.docs.plugin README.md docs`, from the repository root.

Every ```sh block of README.md and docs/*.md runs, command by command, as a reader
would type it (tests/docs/commands.py says how each kind runs and what proves it),
unless the comment right before it marks it not executable here, with the reason:

    <!-- skip: next "needs GitHub: the placeholders <owner> and <digest>" -->

Every relative link is checked, and a ```bash / ```console block (which would escape
the run) fails. A failure names the file, the line and the command. The run ends with
the count of blocks executed and of blocks marked, with each reason.

Sybil, not pytest-codeblocks: both extract fenced blocks and honour skip comments with
a reason, but pytest-codeblocks runs a shell block as one script and checks its exit
status alone, while Sybil hands each block to an evaluator of ours. That is what the
commands need: `nox -s serve` must be started, asked over HTTP and stopped with Ctrl-C;
`python -m release` needs a scratch repository; a failure must name the command's own
line. Sybil also takes parsers of our own, so links (found by markdown-it-py) are
examples of the same run, each with its file and line.

It is a plugin (`-p`), not a conftest.py: the documents sit outside tests/, and plain
`pytest` (the brief's flow, which this runs) must not collect them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.integration.pytest import SybilItem
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from devstack import MissingBinary
from tests.conftest import skip_or_fail
from tests.docs.commands import (
    BRIEF_MARK,
    SETUP_MARK,
    Command,
    Page,
    Workspace,
    commands,
    run_command,
)
from tests.docs.links import RelativeLinkParser, ShellAliasParser
from tests.docs.terminal import COMMAND_TIMEOUT, ROOT, CommandError

DOCUMENTS = ["README.md", "docs/*.md"]


def readme_setup_line() -> str:
    """The quickstart's set-up line, as README.md prints it."""
    for example in SYBIL.parse(ROOT / "README.md").examples():
        if example.region.evaluator is evaluate_shell_block:
            for command in commands(example.parsed, example.line + 1):
                if SETUP_MARK in command.text:
                    return command.text
    raise AssertionError(f"README.md has no set-up line ({SETUP_MARK} ...)")


def page_of(example: Example) -> Page:
    """The reader's state on this page: from the quickstart's venv, in the clone."""
    namespace = example.namespace
    if "page" not in namespace:
        workspace: Workspace = namespace["docs_workspace"]
        namespace["page"] = Page(workspace.quickstart(readme_setup_line()))
    page: Page = namespace["page"]
    return page


def evaluate_shell_block(example: Example) -> str | None:
    """Run each command of a ```sh block; the first failure, with file and line."""
    workspace: Workspace = example.namespace["docs_workspace"]
    where = Path(example.path).relative_to(ROOT)
    for command in commands(example.parsed, example.line + 1):
        try:
            run_command(workspace, page_of(example), command)
        except MissingBinary as missing:
            skip_or_fail(f"{where}:{command.line}: {missing}")
        except (CommandError, AssertionError, OSError) as error:
            return failure(where, command, error)
    return None


def failure(where: Path, command: Command, error: BaseException) -> str:
    """What a failed docs test says: file, line, command, then why."""
    return f"{where}:{command.line}: `{command.text}` failed: {error}"


SYBIL = Sybil(
    parsers=[
        SkipParser(),
        CodeBlockParser("sh", evaluate_shell_block),
        ShellAliasParser(),
        RelativeLinkParser(),
    ],
    patterns=DOCUMENTS,
    path=str(ROOT),
    fixtures=["docs_workspace"],
)
pytest_collect_file = SYBIL.pytest()


@pytest.fixture(scope="session")
def docs_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The fresh clones the whole run shares (removed with pytest's temp folders)."""
    yield Workspace(tmp_path_factory.mktemp("docs"))


def kind(item: pytest.Item) -> str:
    """`block` for a shell block, `link` for a link, `other` for the rest."""
    if not isinstance(item, SybilItem):
        return "other"
    evaluator = item.example.region.evaluator
    if evaluator is evaluate_shell_block:
        return "block"
    return "link" if isinstance(item.example.parsed, str) else "other"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The brief's flow is slow (a whole suite); every block gets the long timeout."""
    for item in items:
        if kind(item) != "block":
            continue
        item.add_marker(pytest.mark.timeout(COMMAND_TIMEOUT * 2))
        assert isinstance(item, SybilItem)  # nosec B101 # narrowed by kind()
        if BRIEF_MARK in item.example.parsed:
            item.add_marker(pytest.mark.slow)


class Tally:
    """What the run did with each block and link, for the closing count."""

    executed: list[str] = []
    marked: list[str] = []
    failed: list[str] = []
    links = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each block: executed (passed or failed) or marked not executable."""
    item_kind = dict(report.user_properties).get("docs-kind")
    if item_kind not in ("block", "link"):
        return
    if report.when != "call" and not report.skipped:
        return
    where = dict(report.user_properties)["docs-where"]
    if item_kind == "link":
        Tally.links += 1
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        Tally.marked.append(f"{where}: {str(reason).removeprefix('Skipped: ')}")
    elif report.failed:
        Tally.failed.append(str(where))
    else:
        Tally.executed.append(str(where))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Label the report with the kind and place of the example."""
    if isinstance(item, SybilItem):
        where = f"{Path(item.example.path).relative_to(ROOT)}:{item.example.line}"
        item.user_properties += [("docs-kind", kind(item)), ("docs-where", where)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The count of blocks executed and marked not executable, with each reason."""
    write = terminalreporter.write_line
    run = len(Tally.executed) + len(Tally.failed)
    write(
        f"docs: {run} shell blocks executed ({len(Tally.failed)} failed), "
        f"{len(Tally.marked)} marked not executable here, "
        f"{Tally.links} relative links checked"
    )
    for line in Tally.marked:
        write(f"  not executable: {line}")
