"""tests/conftest.py: a missing binary skips, or fails when services are required."""

from __future__ import annotations

import pytest

from tests.conftest import skip_or_fail

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
    ("required", "outcome"),
    [
        ("", pytest.skip.Exception),
        ("0", pytest.skip.Exception),
        ("1", pytest.fail.Exception),
    ],
)
def test_the_rule_follows_prework_require_services(
    monkeypatch: pytest.MonkeyPatch, required: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PREWORK_REQUIRE_SERVICES", required)
    with pytest.raises(outcome, match="install the Debian package 'p'"):
        skip_or_fail("x not found: install the Debian package 'p'")


def test_a_missing_binary_in_a_test_or_a_fixture_skips_naming_the_package(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREWORK_REQUIRE_SERVICES", raising=False)
    pytester.makeconftest(
        "from tests.conftest import pytest_runtest_call, pytest_runtest_setup"
    )
    pytester.makepyfile(INNER_TEST)
    # Without the coverage and hypothesis plugins the inner run takes 0.1 s, not 2.5 s.
    plugins_off = [
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:cov",
    ]
    result = pytester.runpytest("-rs", *plugins_off)
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*install the Debian package 'prework-package'*"])
    result.stdout.fnmatch_lines(["*'prework-service-package'*"])
