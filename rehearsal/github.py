"""What GitHub does on a push: pick the workflows, build the event, start the runs.

A push whose head commit says `[skip ci]` starts nothing, as on GitHub. The workflows
a push starts are those whose `on: push` (branches, branches-ignore) selects the
branch, read from the pushed commit: here dev -> dev.yml, master -> release.yml,
anything else -> ci.yml.
"""

from __future__ import annotations

import subprocess  # nosec B404 - git clone of the pushed commit
from fnmatch import fnmatchcase
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rehearsal.act import Act, RunResult, git, load_workflow
from rehearsal.origin import pusher_of, record_checks
from rehearsal.rerun import failed_jobs_workflow

# Jobs the rehearsal runs only in part or not at all, and why (shown in the table).
LEFT_OUT = {
    "e2e": "CHECKS=reduced: this rehearsal deploys to its own swarm instead",
    "lint, typecheck, workflows": "CHECKS=reduced: the checks job runs `nox -s"
    " security` only; the others are the same job with another session, and nox"
    " itself runs them all",
    "pre-commit": "CHECKS=reduced: its hooks are the lint, typecheck and security"
    " sessions again",
}
# The pusher GITHUB_TOKEN names on the origin (rehearsal/__main__.py's PUSHERS).
GITHUB_TOKEN_PUSHER = "github-actions"  # nosec B105 - a pusher's name, no secret
REDUCED = {
    "github-release": "the real gh, answered by a local stand-in of GitHub's REST API"
    " (rehearsal/github_api.py: it records the release, checks no permission)",
    "image": "a local docker-registry over plain HTTP on loopback, with htpasswd"
    " accounts (REGISTRY_PUSH_USERNAME/_TOKEN, REGISTRY_USERNAME/READ_TOKEN): each"
    " may push and pull, a wrong password is refused (no scopes, no token expiry)",
    "tests": "Python 3.11 only, one file (tests/test_workflows.py), embedded store:"
    " the rehearsal proves the job runs and gates, nox itself runs the whole suite;"
    " the mongo:7.0 service container cannot run here (CHECKS=reduced)",
}


def pushes_start(workflow: dict[str, object], branch: str) -> bool:
    """True when the workflow's `on: push` selects a push to branch."""
    on = workflow.get("on")
    push = on.get("push", False) if isinstance(on, dict) else None
    if push is None or push is False:
        return isinstance(on, (str, list)) and "push" in on
    if not isinstance(push, dict):
        return True
    if "branches" in push:
        return any(fnmatchcase(branch, str(p)) for p in push["branches"])
    ignored = push.get("branches-ignore", [])
    return not any(fnmatchcase(branch, str(p)) for p in ignored)


def started_by_push(checkout: Path, branch: str) -> list[str]:
    """The workflow files of the pushed commit that a push to branch starts."""
    folder = checkout / ".github" / "workflows"
    return [
        path.name
        for path in sorted(folder.glob("*.y*ml"))
        if pushes_start(load_workflow(path), branch)
    ]


@dataclass
class Run:
    """One row of the final table."""

    step: str
    event: str
    result: RunResult | None
    note: str = ""
    # A run the step makes fail on purpose (a check that refuses a change).
    expect_failure: bool = False
    # What started it, for a re-run: the workflow file, the event, the checkout.
    started: tuple[str, dict[str, object], Path] | None = None

    @property
    def passed(self) -> bool:
        """A run that succeeded, or a push GitHub would not run anything for."""
        return self.result is None or self.result.succeeded


@dataclass
class GitHub:
    """The local "GitHub": the origin's URL, act and the runs it started."""

    act: Act
    origin_url: str
    folder: Path
    runs: list[Run] = field(default_factory=list)
    # Each branch's tip as of the last push a run was started for.
    known: dict[str, str] = field(default_factory=dict)
    # The origin's log of who pushed what (rehearsal.origin.log_pushes), if kept.
    pushes_log: Path | None = None
    # The origin's bare repository: where the commits that passed the checks are
    # recorded for the ruleset (rehearsal.origin.record_checks), if given.
    origin: Path | None = None

    def push_event(self, branch: str, before: str, after: str) -> dict[str, object]:
        """The push payload GitHub sends (the fields the workflows and act read)."""
        checkout = self.checkout(branch, after)
        message = git(checkout, "log", "-1", "--format=%B")
        owner, name = self.act.repository.name.split("/")
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "created": before == "0" * 40,
            "deleted": False,
            "forced": False,
            "head_commit": {"id": after, "message": message},
            "pusher": {"name": "rehearsal", "email": "developer@rehearsal.invalid"},
            "repository": {
                "full_name": self.act.repository.name,
                "name": name,
                "owner": {"login": owner, "name": owner},
                "default_branch": "master",
                "clone_url": self.origin_url,
            },
            "sender": {"login": "rehearsal"},
        }

    def checkout(self, branch: str, sha: str) -> Path:
        """A clone of the origin at sha on branch, where act starts (its HEAD)."""
        target = self.folder / "checkouts" / f"{branch.replace('/', '-')}-{sha[:12]}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(  # nosec B603 B607 - fixed argv
                ["git", "clone", "-q", "-b", branch, self.origin_url, str(target)],
                check=True,
            )
            git(target, "reset", "-q", "--hard", sha)
        return target

    def tip(self, branch: str) -> str:
        """The origin's tip of branch now."""
        line = git(self.folder, "ls-remote", self.origin_url, f"refs/heads/{branch}")
        return line.split()[0] if line else "0" * 40

    def bot_pushes(self, step: str) -> list[Run]:
        """Runs for what the workflows pushed themselves (the App's token starts them).

        GitHub keeps one pending run per concurrency group, the newest: so one run
        per branch, for its newest tip, as long as the runs keep pushing.
        """
        started = []
        for _ in range(3):
            moved = {
                branch: sha
                for branch in ("dev", "master")
                if (sha := self.tip(branch)) != self.known.get(branch, sha)
            }
            if not moved:
                break
            for branch, sha in moved.items():
                if self.by_github_token(branch, sha):
                    started.append(self.no_run(f"{step} (bot)", branch, sha))
                    continue
                started.append(
                    self.on_push(f"{step} (bot)", branch, self.known[branch], sha)
                )
        return started

    def by_github_token(self, branch: str, sha: str) -> bool:
        """True when the origin says GITHUB_TOKEN (github-actions) pushed sha."""
        if self.pushes_log is None:
            return False
        return pusher_of(self.pushes_log, branch, sha) == GITHUB_TOKEN_PUSHER

    def no_run(self, step: str, branch: str, sha: str) -> Run:
        """A push made with GITHUB_TOKEN: GitHub starts no workflow run for it."""
        self.known[branch] = sha
        label = f"push {branch} {sha[:7]} -> nothing"
        run = Run(step, label, None, "pushed with GITHUB_TOKEN: GitHub starts no run")
        self.runs.append(run)
        return run

    def on_push(
        self, step: str, branch: str, before: str, after: str, refuse_push: str = ""
    ) -> Run:
        """Run the workflow a push starts (none for `[skip ci]`); record the row.
        refuse_push: an image tag whose push fails in this run (rehearsal.act)."""
        self.known[branch] = after
        event = self.push_event(branch, before, after)
        checkout = self.checkout(branch, after)
        message = git(checkout, "log", "-1", "--format=%B")
        workflows = started_by_push(checkout, branch)
        label = f"push {branch} {after[:7]} -> {', '.join(workflows) or 'nothing'}"
        if "[skip ci]" in message:
            run = Run(step, label, None, "head commit says [skip ci]: no run")
        elif len(workflows) != 1:
            run = Run(step, label, None, f"{len(workflows)} workflows: not rehearsed")
        else:
            result = self.act.run(workflows[0], "push", event, checkout, refuse_push)
            run = Run(step, label, result, started=(workflows[0], event, checkout))
            self.record_checks(result)
        self.runs.append(run)
        return run

    def record_checks(self, result: RunResult) -> None:
        """The commit passed the required checks when ci.yml's jobs all succeeded."""
        checks = [
            how
            for job, how in result.jobs.items()
            if job.startswith(("ci/", "checks/ci/"))
        ]
        if self.origin is not None and checks and set(checks) == {"success"}:
            record_checks(self.origin, result.sha)

    def rerun(self, step: str, run: Run, failed_only: bool) -> Run:
        """GitHub's "Re-run all jobs" (the same event and commit again) or "Re-run
        failed jobs" (rehearsal.rerun) of a run that failed."""
        if run.started is None or run.result is None:
            raise ValueError(f"{run.event}: no run to re-run")
        workflow, event, checkout = run.started
        how = "failed jobs" if failed_only else "all jobs"
        if failed_only:
            made = failed_jobs_workflow(
                checkout / ".github" / "workflows" / workflow, run.result.log
            )
            workflow = f"{workflow.removesuffix('.yml')}-rerun-failed.yml"
            path = checkout / ".github" / "workflows" / workflow
            path.write_text(yaml.safe_dump(made, sort_keys=False))
        result = self.act.run(workflow, "push", event, checkout)
        again = Run(step, f"{run.event} (re-run {how})", result, started=run.started)
        self.runs.append(again)
        return again
