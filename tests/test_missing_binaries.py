"""tests/conftest.py: a missing binary skips, or fails when services are required."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER_TEST = """
import pytest
from devstack import find_binary

@pytest.fixture
def service():
    find_binary("prework-no-such-service", "prework-service-package")

def test_in_the_body():
    find_binary("prework-no-such-binary", "prework-package")

def test_in_a_fixture(service):
    pass
"""


@pytest.mark.parametrize(
    ("required", "outcomes"),
    [
        ("", {"skipped": 2}),
        ("0", {"skipped": 2}),
        # A fixture that fails is an error of the test, as pytest counts it.
        ("1", {"failed": 1, "errors": 1}),
    ],
)
def test_missing_binary_skips_or_fails(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    required: str,
    outcomes: dict[str, int],
) -> None:
    monkeypatch.setenv("PREWORK_REQUIRE_SERVICES", required)
    pytester.makeconftest(
        "from tests.conftest import pytest_runtest_call, pytest_runtest_setup"
    )
    pytester.makepyfile(INNER_TEST)
    result = pytester.runpytest("-rsf", "-p", "no:cacheprovider")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(["*install the Debian package 'prework-package'*"])
    result.stdout.fnmatch_lines(["*'prework-service-package'*"])
