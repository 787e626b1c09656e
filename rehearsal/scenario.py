"""The three release cycles of the rehearsal; each step asserts what it must see."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from devstack.waiting import wait_until
from rehearsal.act import RunResult
from rehearsal.github import GitHub, Run
from rehearsal.github_api import GitHubApi
from rehearsal.origin import Clone
from devstack.harness import STORE_OVERLAY
from rehearsal.production import Production

# A change `nox -s security` (bandit) refuses: B602, in a folder it scans.
UNSAFE = (
    "app/rehearsal_unsafe.py",
    "import subprocess\n\n\ndef run(command: str) -> None:\n"
    "    subprocess.run(command, shell=True)\n",
)


class StepFailed(AssertionError):
    """An expectation of the scenario did not hold."""


def expect(condition: bool, message: str) -> None:
    """Raise StepFailed(message) unless condition."""
    if not condition:
        raise StepFailed(message)


def bump(version: str, level: str) -> str:
    """X.Y.Z bumped by minor or patch."""
    major, minor, patch = Version(version).release
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


@dataclass
class Scenario:
    """The developer's clone, the local GitHub and production, and what was seen."""

    clone: Clone
    github: GitHub
    production: Production
    released: str
    say: Callable[[str], None]
    api: GitHubApi
    made: list[str] = field(default_factory=list)
    swarm: list[str] = field(default_factory=list)
    protection: str = ""
    # Takes the ruleset off the origin (the fallback of cycle 3).
    unprotect: Callable[[], None] | None = None
    without_app: bool = False

    # --- what the origin, the registry and the swarm hold -----------------------

    def version_on(self, branch: str) -> str:
        self.clone.git("fetch", "-q", "origin", "--tags", "--force")
        return self.clone.show(f"origin/{branch}", "VERSION").strip()

    def image_tags(self) -> list[str]:
        return self.production.image_tags(self.github.act.repository.name)

    def run_passed(self, run: Run) -> RunResult:
        """The run's result, when a workflow ran and succeeded."""
        if run.result is None:
            raise StepFailed(f"{run.event}: no workflow ran ({run.note})")
        log = f"runs/{run.result.log.parent.name}/act.log"
        expect(run.passed, f"{run.event}: failed, log {log}")
        return run.result

    def bots(self, step: str, took_along: str = "") -> None:
        """The workflows' own pushes start runs whose guard stops them at once.

        Except a back-merge into dev made over `took_along`, a push that landed while
        the release ran and is not versioned yet: that run checks and versions it.
        """
        tags = self.image_tags()
        built = False  # by the run of a merge that took an unversioned push along
        for run in self.github.bot_pushes(step):
            if self.without_app:
                expect(
                    run.result is None and "GITHUB_TOKEN" in run.note,
                    f"{run.event}: a push with GITHUB_TOKEN started a run",
                )
                self.say(f"{step}: {run.event}: pushed with GITHUB_TOKEN: no run")
                continue
            result = self.run_passed(run)
            ran = {job.rsplit("/", 1)[-1].strip() for job in result.jobs}
            if took_along and self.first_parent(result.sha) == took_along:
                expect(
                    {"guard", "version", "image"} <= ran
                    and any(job.startswith("checks/") for job in result.jobs),
                    f"{run.event}: the merge over {took_along[:7]} ran only {ran}",
                )
                self.say(
                    f"{step}: {run.event}: the back-merge took {took_along[:7]} along:"
                    " checked, versioned and built"
                )
                built = True
                continue
            expect(ran == {"guard"}, f"{run.event}: the tool's own commit ran {ran}")
            self.say(f"{step}: {run.event}: the guard stopped it (own commit)")
        if not built:
            expect(self.image_tags() == tags, f"{step}: an own commit made an image")

    def first_parent(self, sha: str) -> str:
        """The first parent of a commit on the origin ('' for a root commit)."""
        self.clone.git("fetch", "-q", "origin")
        parents = self.clone.git("rev-list", "--parents", "-n", "1", sha).split()
        return parents[1] if len(parents) > 1 else ""

    # --- steps ------------------------------------------------------------------

    def branch_protection(self, github_token_header: str) -> None:
        """The ruleset refuses GITHUB_TOKEN (not on the bypass list) a push to master
        (pull request only) and an unchecked commit on dev; the workflows' pushes in
        every cycle then prove they use the App's token, on the bypass list."""
        rules = {
            "dev": "Required status checks are expected",
            "master": "Changes must be made through a pull request",
        }
        for branch, rule in rules.items():
            before = self.clone.remote_sha(branch)
            refused = self.clone.push_refused(branch, github_token_header)
            expect(
                "GH013: Repository rule violations found" in refused
                and rule in refused,
                f"0: a push to {branch} with GITHUB_TOKEN was not refused: {refused}",
            )
            expect(self.clone.remote_sha(branch) == before, f"0: {branch} moved")
        self.protection = "ruleset on master and dev: GITHUB_TOKEN refused (GH013:"
        self.protection += " master pull request only, dev an unchecked commit); the"
        self.protection += " release App (token minted per run) on the bypass list"
        self.say(f"0: {self.protection}")

    def fallback(self, step: str) -> None:
        """From here on the documented fallback: no App, no RELEASE_TOKEN, branches
        unprotected; the workflows push with GITHUB_TOKEN, which starts no runs."""
        if self.unprotect is not None:
            self.unprotect()
        act = self.github.act
        act.variables = {**act.variables, "RELEASE_APP_CLIENT_ID": ""}
        act.secrets = {
            k: v for k, v in act.secrets.items() if k != "RELEASE_APP_PRIVATE_KEY"
        }
        self.without_app = True
        self.protection += f"; from {step} on: the fallback (no App, no"
        self.protection += " RELEASE_TOKEN, no ruleset): the workflows push with"
        self.protection += " GITHUB_TOKEN, and those pushes start no run"
        self.say(f"{step}: fallback: no App, no RELEASE_TOKEN, branches unprotected")

    def dev_push(
        self,
        step: str,
        message: str,
        expected: str,
        files: Mapping[str, str | None] | None = None,
    ) -> Run:
        """A commit pushed to dev: dev.yml versions it and pushes its image."""
        self.clone.commit_change("dev", message, step, files)
        before, after = self.clone.push("dev")
        run = self.github.on_push(step, "dev", before, after)
        self.run_passed(run)
        self.bots(step)
        version = self.version_on("dev")
        expect(
            version == expected, f"{step}: dev has VERSION {version}, not {expected}"
        )
        tags = self.image_tags()
        expect(expected in tags, f"{step}: image {expected} not in registry {tags}")
        self.made.append(f"{expected} (dev build, image {expected})")
        self.say(f"{step}: dev is {version}, image {expected} in the registry")
        return run

    def release(self, step: str, source: str, expected: str) -> Run:
        """A --no-ff merge of source into master: release.yml releases and deploys."""
        self.merge_and_push(source, expected)
        return self.released_run(step, expected)

    def merge_and_push(self, source: str, expected: str) -> tuple[str, str]:
        message = f"Merge pull request from {source}: release {expected}"
        self.clone.merge_no_ff(source, "master", message)
        return self.clone.push("master")

    def released_run(
        self, step: str, expected: str, run: Run | None = None, took_along: str = ""
    ) -> Run:
        if run is None:
            before = self.clone.git("rev-parse", "master~0^1")
            after = self.clone.git("rev-parse", "master")
            run = self.github.on_push(step, "master", before, after)
        self.run_passed(run)
        self.bots(step, took_along)
        self.check_release(step, expected)
        self.check_back_merge(step, expected)
        self.check_swarm(step, expected)
        self.released = expected
        return run

    def release_with_reruns(self, step: str, source: str, expected: str) -> Run:
        """A release whose image push fails half-way (the registry refuses the
        version tag, pushed last); "Re-run failed jobs" publishes and deploys it,
        then "Re-run all jobs" keeps that image and ends the same."""
        before, after = self.merge_and_push(source, expected)
        first = self.github.on_push(
            f"{step}, attempt 1", "master", before, after, refuse_push=expected
        )
        first.expect_failure = True
        if first.result is None:
            raise StepFailed(f"{step}: no workflow ran ({first.note})")
        failed = [job for job, how in first.result.jobs.items() if how == "failure"]
        expect(
            bool(failed) and all(job.startswith("image") for job in failed),
            f"{step}: attempt 1 failed in {failed}, not in the image job",
        )
        self.bots(f"{step}, attempt 1")
        release_sha = self.clone.remote_sha("master")
        tags = self.image_tags()
        expect(
            f"sha-{release_sha}" in tags and expected not in tags,
            f"{step}: not half-pushed: {tags}",
        )
        expect(expected not in self.production.running_versions(), "deployed")
        self.say(
            f"{step}: attempt 1 failed half-way: sha-{release_sha[:7]} and latest"
            f" pushed, {expected} refused, nothing deployed"
        )
        again = self.github.rerun(f"{step}, re-run failed jobs", first, True)
        self.run_passed(again)
        self.bots(f"{step}, re-run failed jobs")
        expect(expected in self.image_tags(), f"{step}: no image {expected}")
        self.check_swarm(f"{step}, re-run failed jobs", expected)
        last = self.github.rerun(f"{step}, re-run all jobs", first, False)
        expect(
            (
                "kept, not rebuilt" in last.result.log.read_text()
                if last.result
                else False
            ),
            f"{step}: the re-run of all jobs did not keep the published image",
        )
        return self.released_run(f"{step}, re-run all jobs", expected, last)

    def check_release(self, step: str, expected: str) -> None:
        version = self.version_on("master")
        expect(version == expected, f"{step}: master has {version}, not {expected}")
        tag = f"v{expected}"
        kind = self.clone.git("cat-file", "-t", tag)
        expect(kind == "tag", f"{step}: {tag} is a {kind}, not an annotated tag")
        changelog = self.clone.show("origin/master", "CHANGELOG.md")
        expect(changelog_has(changelog, expected), f"{step}: no CHANGELOG {expected}")
        tags = self.image_tags()
        for image_tag in (expected, "latest"):
            expect(image_tag in tags, f"{step}: image {image_tag} not in {tags}")
        self.check_github_release(step, expected, changelog)
        self.made.append(
            f"{expected} (release, tag {tag}, images {expected}, latest,"
            " GitHub release)"
        )
        self.say(
            f"{step}: master is {expected}, tag {tag}, images {expected}+latest,"
            " GitHub release with its CHANGELOG section"
        )

    def check_github_release(self, step: str, expected: str, changelog: str) -> None:
        """gh asked the API stand-in for one release: tag, title, CHANGELOG section."""
        tag = f"v{expected}"
        asked = [r for r in self.api.created() if r.get("tag_name") == tag]
        expect(len(asked) == 1, f"{step}: {len(asked)} GitHub releases for {tag}")
        expect(asked[0].get("name") == tag, f"{step}: release titled {asked[0]}")
        section = changelog_section(changelog, expected)
        body = str(asked[0].get("body", "")).strip()
        expect(
            body == section,
            f"{step}: the release notes are not CHANGELOG's {expected} section:"
            f" {body!r}",
        )

    def check_back_merge(self, step: str, expected: str) -> None:
        dev_version = self.version_on("dev")
        expect(
            Version(dev_version) >= Version(expected),
            f"{step}: dev has VERSION {dev_version}, below the release {expected}",
        )
        changelog = self.clone.show("origin/dev", "CHANGELOG.md")
        expect(
            changelog_has(changelog, expected),
            f"{step}: dev lacks CHANGELOG {expected}",
        )
        expect(
            self.clone.is_ancestor(f"v{expected}", "origin/dev"),
            f"{step}: tag v{expected} is not in dev's history",
        )
        self.say(f"{step}: dev holds {dev_version}, CHANGELOG {expected}, v{expected}")

    def check_swarm(self, step: str, expected: str) -> None:
        versions = self.production.running_versions()
        expect(
            bool(versions) and set(versions) == {expected},
            f"{step}: the swarm runs {versions}, not {expected} on every replica",
        )
        answer = self.production.through_nginx("/version").json()
        expect(answer.get("version") == expected, f"{step}: nginx says {answer}")
        ready = self.production.through_nginx("/readyz").status_code
        if self.store_overlay_released():
            expect(ready == 200, f"{step}: /readyz {ready}")
            readiness = "/readyz 200"
        else:
            # Until the deploy selects a store this production has, the app has no
            # store and says so; shown, not asserted.
            readiness = f"/readyz {ready} (NOT asserted: no store overlay in the tree)"
        self.swarm.append(
            f"{step}: {expected} on {len(versions)} replicas, {readiness}"
        )
        self.say(
            f"{step}: swarm runs {expected} on {len(versions)} replicas, {readiness}"
        )

    def store_overlay_released(self) -> bool:
        """True when the released tree has the embedded-store compose overlay."""
        files = self.clone.git("ls-tree", "--name-only", "origin/master")
        return STORE_OVERLAY in files.split()

    def release_job_started(self, earlier: set[Path]) -> bool:
        for folder in set(self.github.act.folder.glob("run-*-release")) - earlier:
            log = folder / "act.log"
            if log.exists() and '"jobID":"release"' in log.read_text(errors="replace"):
                return True
        return False

    def failing_check(self, step: str) -> None:
        """A dev push that a check refuses: the run fails at its checks, and nothing
        is versioned, pushed or built."""
        version, tags = self.version_on("dev"), self.image_tags()
        path, text = UNSAFE
        message = "fix: rehearsal change that a check refuses"
        self.clone.commit_change("dev", message, step, {path: text})
        before, after = self.clone.push("dev")
        run = self.github.on_push(step, "dev", before, after)
        run.expect_failure = True
        if run.result is None:
            raise StepFailed(f"{step}: no workflow ran ({run.note})")
        jobs = run.result.jobs
        failed = [job for job, outcome in jobs.items() if outcome == "failure"]
        expect(not run.passed, f"{step}: the run passed with {path}")
        expect(
            any("security" in job for job in failed), f"{step}: failed jobs {failed}"
        )
        later = [
            j
            for j, how in jobs.items()
            if j.split("/")[0] in ("version", "image") and how != "skipped"
        ]
        expect(not later, f"{step}: ran {later} after a failed check")
        expect(not self.github.bot_pushes(step), f"{step}: the run pushed")
        expect(self.version_on("dev") == version, f"{step}: dev was versioned")
        expect(self.image_tags() == tags, f"{step}: an image was built")
        self.say(f"{step}: nox -s security failed the run: not versioned, no image")

    # --- the cycles ---------------------------------------------------------------

    def cycle_1(self) -> None:
        minor = bump(self.released, "minor")
        self.failing_check("1.0 dev push that a check refuses")
        self.dev_push(
            "1.1 dev push (feat)",
            "feat: rehearsal feature one",
            f"{minor}-dev.1",
            {UNSAFE[0]: None},  # and the refused change taken out again
        )
        self.dev_push("1.2 dev push (fix)", "fix: rehearsal fix one", f"{minor}-dev.2")
        self.release_with_reruns("1.3 merge dev into master", "dev", minor)

    def cycle_2(self) -> None:
        minor = bump(self.released, "minor")
        self.dev_push(
            "2.1 dev push (feat)", "feat: rehearsal feature two", f"{minor}-dev.1"
        )
        before, after = self.merge_and_push("dev", minor)
        outcome: dict[str, Run | BaseException] = {}

        def release_run() -> None:
            try:
                step = "2.2 merge dev into master"
                outcome["run"] = self.github.on_push(step, "master", before, after)
            except BaseException as error:  # handed to the main thread
                outcome["run"] = error

        earlier = set(self.github.act.folder.glob("run-*-release"))
        release = threading.Thread(target=release_run, daemon=True)
        release.start()
        # The race: a push to dev lands once the release run's release job started.
        wait_until(lambda: self.release_job_started(earlier), 600, "the release job")
        dev_version = self.version_on("dev")
        self.clone.commit_change("dev", "fix: rehearsal fix during the release", "2.3")
        dev_before, dev_after = self.clone.push("dev")
        racing = self.github.on_push(
            "2.3 dev push during the release", "dev", dev_before, dev_after
        )
        release.join()
        self.run_passed(racing)
        run = outcome["run"]
        if isinstance(run, BaseException):
            raise run
        self.released_run("2.2 merge dev into master", minor, run, dev_after)
        self.check_racing_push(dev_after, dev_version, minor)

    def check_racing_push(self, sha: str, before: str, released: str) -> None:
        """The push made during the release: on dev, built, not in the release."""
        expect(self.clone.is_ancestor(sha, "origin/dev"), "2.3: the push was lost")
        expect(
            not self.clone.is_ancestor(sha, f"v{released}"),
            f"2.3: the push went into v{released} without its own checks",
        )
        builds = [
            tag
            for tag in self.image_tags()
            if "-dev." in tag and Version(tag) > Version(before)
        ]
        expect(bool(builds), f"2.3: no dev build after {before} in the registry")
        self.made.append(f"{builds[-1]} (dev build of the push during the release)")
        self.say(f"2.3: the push during the release is on dev, built as {builds[-1]}")

    def cycle_3(self) -> None:
        self.fallback("3.0")
        patch = bump(self.released, "patch")
        dev_before = self.version_on("dev")
        self.clone.branch_from("hotfix/rehearsal", "master")
        self.clone.commit_change("hotfix/rehearsal", "fix: rehearsal hotfix", "3.1")
        before, after = self.clone.push("hotfix/rehearsal")
        self.run_passed(
            self.github.on_push(
                "3.1 push hotfix branch", "hotfix/rehearsal", before, after
            )
        )
        self.release("3.2 merge hotfix into master", "hotfix/rehearsal", patch)
        minor = bump(patch, "minor")
        run = self.dev_push(
            "3.3 dev push after the hotfix",
            "feat: rehearsal feature three",
            f"{minor}-dev.1",
        )
        expect(
            Version(self.version_on("dev")) > Version(dev_before), "3.3: dev went back"
        )
        del run


def elapsed(started: float) -> str:
    """Seconds since started, for the output."""
    return f"{time.monotonic() - started:.0f} s"


def changelog_section(text: str, version: str) -> str:
    """CHANGELOG text's section for version (heading included), stripped."""
    match = re.search(rf"^## \[{re.escape(version)}\].*?(?=^## |\Z)", text, re.M | re.S)
    return match.group(0).strip() if match else ""


def changelog_has(text: str, version: str) -> bool:
    """True when CHANGELOG text has a section for version."""
    return re.search(rf"^## \[{re.escape(version)}\]", text, re.M) is not None
