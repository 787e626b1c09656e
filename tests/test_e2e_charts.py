"""e2e/charts.py: a step's timeline drawn as an SVG, answers per second by version,
failures marked, the step shaded."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - parses the SVG this test just drew
from pathlib import Path

from e2e.charts import per_second, render_timeline
from e2e.load import Answer

ZERO = 1_800_000_000.0


def answer(at: float, version: str | None) -> Answer:
    return Answer(ZERO + at, "GET /", version, version is None, 0.01)


TIMELINE = [
    answer(0.1, "1.0.0"),
    answer(0.6, "1.0.0"),
    answer(1.2, "1.0.0"),
    answer(1.7, None),
    answer(2.2, "1.0.1"),
    answer(2.8, "1.0.1"),
]


def test_answers_are_counted_per_second_by_version_failures_apart() -> None:
    seconds, versions = per_second(TIMELINE, ZERO)
    assert seconds == [0, 1, 2]
    assert versions == {"1.0.0": [2, 1, 0], "1.0.1": [0, 0, 2]}


def test_a_step_is_drawn_as_an_svg_with_its_versions_failures_and_span(
    tmp_path: Path,
) -> None:
    path = render_timeline(
        tmp_path / "charts", "Rolling update A->B", TIMELINE, ZERO + 1, ZERO + 2.5
    )
    assert path == tmp_path / "charts" / "rolling-update-a-b.svg"
    text = path.read_text()
    ET.fromstring(text)  # nosec B314 - well-formed SVG of our own
    for label in ("1.0.0", "1.0.1", "failed (1)", "the step", "answers per second"):
        assert label in text, label
    assert not [line for line in text.splitlines() if line != line.rstrip()]
    # The same timeline draws the same file: no date in it.
    again = render_timeline(
        tmp_path / "again", "Rolling update A->B", TIMELINE, ZERO + 1, ZERO + 2.5
    )
    assert again.read_bytes() == path.read_bytes()
