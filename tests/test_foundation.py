"""The quality gate itself: pins defined once, and lint that really fails."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess  # nosec B404 - runs nox on temporary files
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)$")


def pins(requirements: list[str]) -> dict[str, str]:
    """name -> version for every `name==version` requirement."""
    found = {}
    for requirement in requirements:
        match = PIN.match(requirement)
        assert match, f"{requirement!r} is not pinned with =="
        found[match.group(1).lower()] = match.group(2)
    return found


def all_pyproject_pins() -> dict[str, str]:
    merged = pins(PYPROJECT["project"]["dependencies"])
    for requirements in PYPROJECT["dependency-groups"].values():
        merged.update(pins([r for r in requirements if isinstance(r, str)]))
    return merged


def test_pre_commit_pins_equal_pyproject_pins() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    declared = all_pyproject_pins()
    for repo in config["repos"]:
        assert repo["repo"] == "local", "hooks must not need a git clone"
        for hook in repo["hooks"]:
            for name, version in pins(hook.get("additional_dependencies", [])).items():
                assert declared.get(name) == version, f"{hook['id']}: {name}"


def test_requirements_txt_is_the_project_and_its_test_group() -> None:
    lines = [
        line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    # The release tool's group too: the suite tests python -m release. Included
    # groups count (the test group's `rehearse`: act, which a test runs).
    assert lines[0] == "-e ."
    groups = PYPROJECT["dependency-groups"]

    def pins(name: str) -> list[str]:
        found: list[str] = []
        for entry in groups[name]:
            found += [entry] if isinstance(entry, str) else pins(entry["include-group"])
        return found

    assert lines[1:] == pins("release") + pins("test")


def test_every_pin_is_exact() -> None:
    assert all_pyproject_pins()


@pytest.fixture(scope="module")
def lint_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's lint setup, with no Python files of its own."""
    project = tmp_path_factory.mktemp("lint")
    for name in ("noxfile.py", "pyproject.toml", ".flake8"):
        shutil.copy(ROOT / name, project / name)
    return project


def run_lint(project: Path, source: str) -> subprocess.CompletedProcess[str]:
    (project / "sample.py").write_text(source)
    return subprocess.run(  # nosec B603 - fixed argv
        [sys.executable, "-m", "nox", "-s", "lint", "--envdir", str(project / ".nox")],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_lint_passes_clean_code(lint_project: Path) -> None:
    result = run_lint(lint_project, 'GREETING = "hello"\n')
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_lint_fails_on_a_flake8_error(lint_project: Path) -> None:
    result = run_lint(lint_project, "import os\n")
    assert result.returncode != 0
    assert "F401" in result.stdout + result.stderr


@pytest.mark.slow
def test_lint_fails_on_code_black_would_change(lint_project: Path) -> None:
    result = run_lint(lint_project, "GREETING = 'hello'\n")
    assert result.returncode != 0
    assert "would reformat" in result.stdout + result.stderr


def third_party_imports(package: str) -> set[str]:
    """Top-level modules `package` imports that are neither stdlib nor the project's."""
    own = {"app", "release", "nginx", "deploy", "devstack", "e2e"}
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {name for name in found - own if name not in sys.stdlib_module_names}


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions (normalised names) that provide `modules`."""
    provided = importlib.metadata.packages_distributions()
    return {
        re.sub(r"[-_.]+", "-", dist).lower()
        for module in modules
        for dist in provided[module]
    }


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", name) for name in pins(requirements)}


@pytest.mark.parametrize(
    ("package", "group"), [("app", None), ("deploy", None), ("release", "release")]
)
def test_each_shipped_package_needs_only_its_own_dependencies(
    package: str, group: str | None
) -> None:
    """The image installs `dependencies` alone: app/ may import nothing else."""
    project = PYPROJECT["project"]
    allowed = requirement_names(project["dependencies"])
    if group is not None:
        allowed |= requirement_names(PYPROJECT["dependency-groups"][group])
    assert distributions(third_party_imports(package)) <= allowed


def test_the_image_installs_the_service_dependencies_alone() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "['project']['dependencies']" in dockerfile
    assert "optional-dependencies" not in dockerfile
    service = requirement_names(PYPROJECT["project"]["dependencies"])
    assert not {"gitpython", "packaging"} & service


def layout_rows() -> list[list[str]]:
    """README.md's layout table: one list of cells per row (path, what, entry, read)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n\n")[1]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()[2:]
    ]


def test_the_readme_layout_names_every_top_level_folder_and_a_real_first_read() -> None:
    tracked = subprocess.run(  # nosec B603 B607 - fixed argv
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {name.split("/")[0] for name in tracked if "/" in name}
    rows = layout_rows()
    named = {
        path.strip("`").rstrip("/")
        for row in rows
        for path in re.findall(r"`([^`]+)`", row[0])
    }
    assert folders - named == set(), "folders missing from README's layout table"
    for path, _, entry, first in rows:
        assert entry, f"{path}: no entry point"
        for read in re.findall(r"`([^`(]+?)`", first):
            assert (ROOT / read).exists(), f"{path}: read first {read} does not exist"
