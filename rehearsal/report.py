"""The rehearsal's closing table: every run, every version made, the swarm per cycle."""

from __future__ import annotations

from rehearsal.github import LEFT_OUT, REDUCED, Run
from rehearsal.scenario import Scenario


def job_cell(run: Run) -> tuple[str, str]:
    """(jobs run with their results, jobs left out or reduced and why)."""
    if run.result is None:
        return "-", run.note
    ran = []
    notes = []
    for job, outcome in sorted(run.result.jobs.items()):
        short = job.split("/", 1)[-1]
        ran.append(f"{short}: {outcome}")
        for name, why in {**LEFT_OUT, **REDUCED}.items():
            if name in short.split("/")[-1].split():
                notes.append(f"{short}: {why}")
    if any(job.split("/")[0] == "checks" for job in run.result.jobs):
        notes += [
            f"{name}: {why}"
            for name, why in LEFT_OUT.items()
            if name != "github-release"
        ]
    return "; ".join(ran), "; ".join(dict.fromkeys(notes))


def table(scenario: Scenario | None, seconds: float) -> str:
    """The table as text."""
    lines = ["", "== rehearsal: workflow runs =="]
    if scenario is None:
        return "\n".join([*lines, "(nothing ran)", f"total {seconds:.0f} s"])
    for run in scenario.github.runs:
        result = (
            "no run"
            if run.result is None
            else (
                "success"
                if run.passed
                else (
                    "failed, as the step expects"
                    if run.expect_failure
                    else f"FAILED (log runs/{run.result.log.parent.name}/act.log)"
                )
            )
        )
        took = "" if run.result is None else f", {run.result.seconds:.0f} s"
        ran, left = job_cell(run)
        lines.append(f"- {run.step}: {run.event}: {result}{took}")
        lines.append(f"    jobs: {ran}")
        if left:
            lines.append(f"    left out / reduced: {left}")
        for said in [] if run.result is None else run.result.outputs:
            lines.append(f"    runner: {said}")
    lines.append("== branch protection ==")
    lines.append(f"- {scenario.protection or '(not checked)'}")
    lines.append("== versions, tags and images made ==")
    lines += [f"- {made}" for made in scenario.made] or ["(none)"]
    lines.append("== the swarm after each release ==")
    lines += [f"- {seen}" for seen in scenario.swarm] or ["(no release deployed)"]
    lines.append(f"total {seconds:.0f} s")
    return "\n".join(lines)
