"""The CI variables the tool reads, read once when a command starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from release.errors import Refusal


@dataclass(frozen=True)
class CiEnvironment:
    """GitHub Actions' variables as the tool uses them (all empty outside CI)."""

    github_actions: bool = False
    sha: str | None = None  # GITHUB_SHA: the commit this run's checks ran on
    ref_name: str | None = None  # GITHUB_REF_NAME: the branch pushed
    output: Path | None = None  # GITHUB_OUTPUT: where step outputs go

    @property
    def checked_sha(self) -> str | None:
        """The only commit `bump --push` may version in GitHub Actions, else None."""
        return self.sha if self.github_actions and self.sha else None

    def check_output(self) -> None:
        """Refuse, before doing anything, a GITHUB_OUTPUT in a missing folder."""
        if self.output is None:
            return
        if not self.output.parent.is_dir() or self.output.is_dir():
            raise Refusal(
                f"GITHUB_OUTPUT {self.output}: no such file in an existing folder "
                "(the step outputs could not be written)"
            )

    def write_outputs(self, outputs: Mapping[str, str | bool]) -> None:
        """Append `name=value` lines to GITHUB_OUTPUT (booleans as true/false)."""
        if self.output is None:
            return
        with open(self.output, "a", encoding="utf-8") as stream:
            for name, value in outputs.items():
                text = (
                    ("true" if value else "false") if isinstance(value, bool) else value
                )
                stream.write(f"{name}={text}\n")


def read_ci_environment(environ: Mapping[str, str]) -> CiEnvironment:
    """The CiEnvironment of `environ` (os.environ in the CLI)."""
    output = environ.get("GITHUB_OUTPUT", "")
    return CiEnvironment(
        github_actions=environ.get("GITHUB_ACTIONS", "") == "true",
        sha=environ.get("GITHUB_SHA") or None,
        ref_name=environ.get("GITHUB_REF_NAME") or None,
        output=Path(output) if output else None,
    )
