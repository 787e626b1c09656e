"""GitHub's "Re-run failed jobs" under act (rehearsal.rerun): release.yml, a log."""

from __future__ import annotations

import json
from pathlib import Path

from rehearsal.rerun import failed_jobs_workflow

RELEASE = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "release.yml"


def entry(job: str, job_id: str, **fields: object) -> str:
    return json.dumps({"job": job, "jobID": job_id, **fields})


def test_the_failed_image_job_runs_again_with_the_release_jobs_outputs(
    tmp_path: Path,
) -> None:
    """The image job failed: it and the jobs needing it run again as written; the
    release job, which succeeded, only gives the outputs it gave."""
    sha = "a" * 40
    outputs = {"version": "0.2.0", "released": "true", "changed": "true", "sha": sha}
    lines = [
        entry("release/guard", "guard", jobResult="success"),
        entry("checks/ci/nox -s security", "checks", jobResult="success"),
        entry("checks/ci/nox -s tests-3.11", "tests", jobResult="success"),
        *(
            entry(
                "release/release",
                "release",
                command="set-output",
                stepID=["bump"],
                name=name,
                arg=value,
            )
            for name, value in outputs.items()
        ),
        entry("release/release", "release", jobResult="success"),
        entry("release/back-merge", "back-merge", jobResult="success"),
        entry("image/image/image", "image", jobResult="failure"),
        "not json",
    ]
    log = tmp_path / "act.log"
    log.write_text("\n".join(lines) + "\n")

    made = failed_jobs_workflow(RELEASE, log)

    jobs = made["jobs"]
    assert list(jobs) == ["release", "image", "github-release", "deploy"]
    assert jobs["release"]["outputs"] == outputs
    assert "needs" not in jobs["release"]
    assert "succeeded in the first attempt" in jobs["release"]["steps"][0]["run"]
    assert jobs["image"]["uses"] == "./.github/workflows/image.yml"
    assert jobs["deploy"]["needs"] == ["release", "image"]
    assert made["on"] == {"push": {"branches": ["master", "main"]}}
