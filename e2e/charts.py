"""Timeline charts of the e2e's steps: answers per second by version, failed requests
marked, the step's start and end (matplotlib, drawn without a display: Agg, SVG)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from matplotlib import rc_context
from matplotlib.figure import Figure

from e2e.load import Answer

# One colour per version in order of appearance; failures always red.
COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")
FAILED = "tab:red"


def file_name(title: str) -> str:
    """A file name for a chart's title: lower case, dashes, .svg."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".svg"


def per_second(
    timeline: Sequence[Answer], zero: float
) -> tuple[list[int], dict[str, list[int]]]:
    """Seconds since `zero`, and each version's answers in each of those seconds."""
    last = int(max(answer.at for answer in timeline) - zero) if timeline else 0
    seconds = list(range(last + 1))
    counts: dict[str, Counter[int]] = {}
    for answer in timeline:
        if answer.version is not None and not answer.failed:
            counts.setdefault(answer.version, Counter())[int(answer.at - zero)] += 1
    return seconds, {v: [c[s] for s in seconds] for v, c in counts.items()}


def render_timeline(
    folder: Path,
    title: str,
    timeline: Sequence[Answer],
    started: float,
    ended: float,
) -> Path:
    """One step's chart in `folder`; its path. `started` and `ended` are time.time()
    of the step's action, shaded."""
    zero = min([started, *(answer.at for answer in timeline)])
    seconds, versions = per_second(timeline, zero)
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    axes = figure.subplots()
    for colour, (version, counts) in zip(COLOURS * 4, versions.items()):
        axes.step(seconds, counts, where="post", color=colour, label=version)
    failed = [answer.at - zero for answer in timeline if answer.failed]
    axes.scatter(
        failed,
        [0.0] * len(failed),
        marker="x",
        color=FAILED,
        zorder=3,
        label=f"failed ({len(failed)})",
    )
    axes.axvspan(started - zero, ended - zero, color="0.9", zorder=0, label="the step")
    axes.set_title(title)
    axes.set_xlabel("seconds")
    axes.set_ylabel("answers per second")
    axes.set_ylim(bottom=-0.5)
    axes.legend(loc="upper left", fontsize="small")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(title)
    # No date and fixed element ids: the same timeline draws the same bytes.
    with rc_context({"svg.hashsalt": "prework"}):
        figure.savefig(path, metadata={"Date": None})
    # Without the spaces matplotlib leaves at line ends (insignificant in SVG): a chart
    # copied into docs/ passes pre-commit's trailing-whitespace hook as drawn.
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line.rstrip() for line in lines) + "\n")
    return path
