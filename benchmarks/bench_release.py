"""Time `python -m release next` against python-semantic-release and commitizen.

Builds repositories with 1 000, 10 000 and 100 000 conventional commits on
`dev` after a `v0.1.0` tag (with `git fast-import`), then runs each tool on
each repository several times, side by side, and prints a Markdown table of
median wall time and peak memory. Run it with `nox -s bench -- release`.

With RELEASE_BASELINE=<a checkout of another commit> (or --baseline) it also
times that checkout's `release` side by side, with paired ratios per round. A
second table times `bump` of a first release over 5 000 commits on `master`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess  # nosec B404 - the benchmark runs git and the three tools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench" / "release"
BIN = Path(sys.executable).parent
SIZES = (1_000, 10_000, 100_000)
# Each commit's type cycles through these: no breaking change, so every tool
# has to read the whole range (a major bump cannot end the walk early).
MESSAGES = (
    "fix: handle case {n}",
    "docs: explain case {n}",
    "feat(notes): option {n}",
    "chore: tidy {n}",
    "refactor: simplify {n}",
    "fix(api): edge {n}",
    "test: cover {n}",
    "perf: faster {n}",
)
PYPROJECT = """\
[project]
name = "bench"
version = "0.1.0"

[tool.release]
dev-branch = "dev"
release-branches = ["master", "main"]

[tool.semantic_release]
tag_format = "v{version}"
commit_parser = "conventional"
allow_zero_version = true
major_on_zero = true
version_toml = []
version_variables = []

[tool.semantic_release.branches.main]
match = "^(main|master)$"
prerelease = false

[tool.semantic_release.branches.dev]
match = "^dev$"
prerelease = true
prerelease_token = "dev"

[tool.commitizen]
name = "cz_conventional_commits"
version_provider = "commitizen"
version = "0.1.0"
tag_format = "v$version"
"""
NEXT = [sys.executable, "-m", "release", "next", "--branch", "dev"]
BUMP = [sys.executable, "-m", "release", "bump", "--branch", "master"]
BASELINE = "release (baseline)"
BUMP_COMMITS = 5_000
TOOLS = {
    "release": NEXT,
    "semantic-release": [str(BIN / "semantic-release"), "--noop", "version", "--print"],
    "commitizen": [str(BIN / "cz"), "bump", "--get-next"],
}


@dataclass(frozen=True)
class Run:
    """One timed run: wall and CPU seconds, peak RSS (MiB), what the tool printed."""

    seconds: float
    cpu_seconds: float
    peak_mib: float
    output: str


def fast_import_stream(commits: int, branch: str = "dev") -> bytes:
    """A fast-import stream: master with v0.1.0, then `commits` commits on `branch`."""
    lines: list[bytes] = []

    def blob_commit(ref: str, mark: int, message: str, files: dict[str, str]) -> None:
        when = 1_700_000_000 + mark
        data = message.encode()
        lines.append(f"commit {ref}\nmark :{mark}\n".encode())
        lines.append(f"committer Bench <bench@example.invalid> {when} +0000\n".encode())
        lines.append(f"data {len(data)}\n".encode() + data + b"\n")
        if mark > 1:
            lines.append(f"from :{mark - 1}\n".encode())
        for name, content in files.items():
            body = content.encode()
            lines.append(f"M 644 inline {name}\ndata {len(body)}\n".encode() + body)
            lines.append(b"\n")
        lines.append(b"\n")

    blob_commit(
        "refs/heads/master",
        1,
        "chore: start the project",
        {"VERSION": "0.1.0\n", "pyproject.toml": PYPROJECT},
    )
    tag_message = b"release 0.1.0"
    lines.append(b"tag v0.1.0\nfrom :1\n")
    lines.append(b"tagger Bench <bench@example.invalid> 1700000000 +0000\n")
    lines.append(f"data {len(tag_message)}\n".encode() + tag_message + b"\n")
    for n in range(commits):
        message = MESSAGES[n % len(MESSAGES)].format(n=n)
        blob_commit(f"refs/heads/{branch}", n + 2, message, {"notes.txt": f"{n}\n"})
    return b"".join(lines)


def build_repository(commits: int, branch: str = "dev") -> Path:
    """The benchmark repository for `commits` (reused when it already exists)."""
    path = WORK / (f"repo-{commits}" if branch == "dev" else f"{branch}-{commits}")
    if (path / ".git" / "bench-complete").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    git = ["git", "-C", str(path)]
    subprocess.run([*git, "init", "-q", "-b", "master"], check=True)  # nosec B603
    subprocess.run(  # nosec B603 - fixed git argv
        [*git, "fast-import", "--quiet"],
        input=fast_import_stream(commits, branch),
        check=True,
    )
    subprocess.run([*git, "checkout", "-q", branch], check=True)  # nosec B603
    # semantic-release reads the remote's URL (never contacted with --noop).
    remote = "https://example.invalid/bench/bench.git"
    subprocess.run([*git, "remote", "add", "origin", remote], check=True)  # nosec B603
    (path / ".git" / "bench-complete").touch()
    return path


def child_environment(source: Path | None = None) -> dict[str, str]:
    """The tools' environment: bytecode caches allowed, as on a normal install.

    With `source`, its `release` package comes first on the path (a baseline).
    """
    environment = dict(os.environ)  # `release` is installed with the project
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment.pop("GITHUB_REF_NAME", None)
    environment.pop("GITHUB_OUTPUT", None)
    return environment


def timed_run(command: Sequence[str], cwd: Path, source: Path | None = None) -> Run:
    """Run once; wall time and ru_maxrss of the largest process in its tree."""
    start = time.perf_counter()
    process = subprocess.Popen(  # nosec B603 - the tools' own fixed argv
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_environment(source),
    )
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode}) in {cwd}")
    cpu = usage.ru_utime + usage.ru_stime
    last_line = output.strip().splitlines()[-1]
    return Run(seconds, cpu, usage.ru_maxrss / 1024, last_line)


def run_tool(tool: str, repository: Path, baseline: Path | None) -> Run:
    """One timed run of `tool` (the baseline is our command from another checkout)."""
    if tool == BASELINE:
        return timed_run(NEXT, repository, baseline)
    return timed_run(TOOLS[tool], repository)


def measure(
    tools: Sequence[str],
    repository: Path,
    commits: int,
    runs: int,
    baseline: Path | None = None,
) -> dict[str, list[Run]]:
    """A warm-up run of each tool, then rounds that run every tool once in turn.

    Interleaving puts the tools under the same machine load (this machine is
    shared), so their ratios hold even when absolute times drift.
    """
    for tool in tools:
        run_tool(tool, repository, baseline)
    results: dict[str, list[Run]] = {tool: [] for tool in tools}
    for round_number in range(runs):
        for tool in tools:
            if round_number < runs_for(tool, commits, runs):
                results[tool].append(run_tool(tool, repository, baseline))
    return results


def paired_ratios(results: dict[int, dict[str, list[Run]]]) -> str:
    """Per size: median of each round's release / baseline time (same round, seconds
    apart), which drifting load skews less than a ratio of medians."""
    lines = []
    for commits, by_tool in results.items():
        if BASELINE not in by_tool:
            continue
        pairs = zip(by_tool["release"], by_tool[BASELINE])
        ratios = [ours.seconds / base.seconds for ours, base in pairs]
        lines.append(
            f"- {commits:,} commits: release / baseline, median of "
            f"{len(ratios)} paired ratios: {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
    return "\n".join(lines)


def measure_bump(runs: int, baseline: Path | None) -> str:
    """`bump` of a first release over BUMP_COMMITS commits: a Markdown table.

    Each run releases, then the tag and commit are taken back (untimed).
    """
    repository = build_repository(BUMP_COMMITS, branch="master")
    git = ["git", "-C", str(repository)]
    start = subprocess.run(  # nosec B603 - fixed git argv
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    sources: dict[str, Path | None] = {"release": None}
    if baseline is not None:
        sources[BASELINE] = baseline
    rows = [
        "| commits | tool | `bump` | median s | peak MiB |",
        "| ---: | --- | --- | ---: | ---: |",
    ]
    for tool, source in sources.items():
        done: list[Run] = []
        failure = ""
        for _ in range(runs):
            try:
                done.append(timed_run(BUMP, repository, source))
            except RuntimeError as error:
                failure = str(error)
            undo = [
                [*git, "tag", "-d", "v0.2.0"],
                [*git, "reset", "-q", "--hard", start],
            ]
            for command in undo:
                subprocess.run(command, capture_output=True, check=False)  # nosec B603
        if failure or not done:
            rows.append(f"| {BUMP_COMMITS:,} | {tool} | failed: {failure} | - | - |")
            continue
        median = statistics.median(run.seconds for run in done)
        peak = max(run.peak_mib for run in done)
        rows.append(
            f"| {BUMP_COMMITS:,} | {tool} | `{done[0].output}` | {median:.3f} "
            f"| {peak:.0f} |"
        )
    return "\n".join(rows)


def runs_for(tool: str, commits: int, runs: int) -> int:
    """Fewer repeats where one run takes long (semantic-release on 100 000)."""
    if tool == "semantic-release" and commits >= 100_000:
        return max(3, runs // 2)
    return runs


def table(results: dict[int, dict[str, list[Run]]]) -> str:
    """The Markdown table of medians, peaks and ratios."""
    rows = [
        "| commits | tool | version printed | median s | x release "
        "| median CPU s | peak MiB |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for commits, by_tool in results.items():
        ours = statistics.median(run.seconds for run in by_tool["release"])
        for tool, runs in by_tool.items():
            median = statistics.median(run.seconds for run in runs)
            cpu = statistics.median(run.cpu_seconds for run in runs)
            peak = max(run.peak_mib for run in runs)
            rows.append(
                f"| {commits:,} | {tool} | `{runs[0].output}` | {median:.3f} "
                f"| {median / ours:.1f} | {cpu:.3f} | {peak:.0f} |"
            )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the repositories, time every tool on each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--runs", type=int, default=7, help="timed runs per tool")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    parser.add_argument(
        "--baseline",
        type=Path,
        default=os.environ.get("RELEASE_BASELINE") or None,
        help="a checkout whose release/ to time beside ours (RELEASE_BASELINE)",
    )
    args = parser.parse_args(argv)
    tools = [*args.tools, *([BASELINE] if args.baseline else [])]
    results: dict[int, dict[str, list[Run]]] = {}
    for commits in args.sizes:
        repository = build_repository(commits)
        results[commits] = measure(tools, repository, commits, args.runs, args.baseline)
        print(f"# {commits} commits: done", file=sys.stderr, flush=True)
    print(table(results))
    if args.baseline:
        print("\n" + paired_ratios(results))
    print("\n" + measure_bump(args.runs, args.baseline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
