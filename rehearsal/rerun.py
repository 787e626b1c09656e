"""GitHub's "Re-run failed jobs", for act, which has no re-runs.

GitHub runs the failed jobs of the run again, and every job that needs one of them;
the jobs that succeeded are not run again, their outputs are reused. Under act the
same is a workflow made from the run's own file: the jobs to run again as they are
written, and each succeeded job they need replaced by a job that only gives the
outputs it gave in the first attempt (read from act's log). "Re-run all jobs" needs
nothing of this: it is the same event again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rehearsal.act import load_workflow

STEP_OUTPUT = re.compile(r"steps\.([\w-]+)\.outputs\.([\w-]+)")


def log_entries(log: Path) -> list[dict[str, Any]]:
    """act's JSON log lines, parsed."""
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def top_level_job(jobs: dict[str, Any], entry: dict[str, Any]) -> str:
    """The id, in the run's own workflow, of the job a log entry belongs to: its own
    jobID, or for a job of a called workflow (`uses:`) the calling job's id."""
    job_id = str(entry.get("jobID", ""))
    if job_id in jobs and "uses" not in jobs[job_id]:
        return job_id
    return str(entry.get("job", "")).split("/", 1)[0].strip()


def outcomes(jobs: dict[str, Any], log: Path) -> dict[str, str]:
    """Each top-level job's result: failure when any of its jobs failed."""
    found: dict[str, str] = {}
    for entry in log_entries(log):
        if "jobResult" in entry:
            job = top_level_job(jobs, entry)
            if found.get(job) != "failure":
                found[job] = str(entry["jobResult"])
    return found


def step_outputs(log: Path) -> dict[tuple[str, str, str], str]:
    """(jobID, step id, name) -> the value each step set, from act's log."""
    values = {}
    for entry in log_entries(log):
        if entry.get("command") == "set-output" and entry.get("stepID"):
            key = (str(entry["jobID"]), str(entry["stepID"][0]), str(entry["name"]))
            values[key] = str(entry.get("arg", ""))
    return values


def job_outputs(
    job_id: str, job: dict[str, Any], values: dict[tuple[str, str, str], str]
) -> dict[str, str]:
    """A job's outputs as they were, from the run's step outputs (step_outputs): the
    first step output its expression names that was set (`a || b`)."""
    given = {}
    for name, expression in (job.get("outputs") or {}).items():
        candidates = STEP_OUTPUT.findall(str(expression))
        given[name] = next(
            (
                values[(job_id, s, o)]
                for s, o in candidates
                if values.get((job_id, s, o))
            ),
            "",
        )
    return given


def needs_of(job: dict[str, Any]) -> list[str]:
    """A job's `needs:`, one id or a list, as a list."""
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def needing(jobs: dict[str, Any], failed: set[str]) -> set[str]:
    """The failed jobs and every job that needs one of them, directly or not."""
    chosen = set(failed)
    grew = True
    while grew:
        grew = False
        for job_id, job in jobs.items():
            if job_id not in chosen and chosen & set(needs_of(job)):
                chosen.add(job_id)
                grew = True
    return chosen


def failed_jobs_workflow(workflow: Path, log: Path) -> dict[str, Any]:
    """The workflow that "Re-run failed jobs" runs, after the run logged at `log`."""
    data = load_workflow(workflow)
    jobs: dict[str, Any] = dict(data["jobs"])  # type: ignore[call-overload]
    result = outcomes(jobs, log)
    again = needing(jobs, {job for job, how in result.items() if how == "failure"})
    kept = {job_id: job for job_id, job in jobs.items() if job_id in again}
    values = step_outputs(log)
    for job in list(kept.values()):
        for need in needs_of(job):
            if need not in kept:
                kept[need] = reused(need, job_outputs(need, jobs[need], values))
    return {**data, "jobs": dict(sorted(kept.items(), key=order(jobs)))}


def order(jobs: dict[str, Any]) -> Any:
    """Sort key: the jobs in the order of the workflow file."""
    position = {job_id: index for index, job_id in enumerate(jobs)}
    return lambda item: position[item[0]]


def reused(job_id: str, outputs: dict[str, str]) -> dict[str, Any]:
    """A job that gives the outputs a succeeded job gave, and does nothing else."""
    said = f"rehearsal runner: {job_id} succeeded in the first attempt: not run again"
    return {
        "runs-on": "ubuntu-24.04",
        "permissions": {},
        "outputs": outputs,
        "steps": [{"run": f"echo '{said}'"}],
    }
