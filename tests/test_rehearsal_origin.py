"""The rehearsal's origin: HEAD released on master with dev cut from it, the
developer's repository untouched, also from a shallow checkout (as CI has)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rehearsal.origin import seed_origin

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def refs(repository: Path) -> str:
    return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repository)


@pytest.mark.parametrize("depth", [None, 1])
def test_origin_is_head_released_with_dev_cut_from_it(
    tmp_path: Path, depth: int | None
) -> None:
    source = tmp_path / "source"
    clone = ["git", "clone", "-q", "--no-local"]
    clone += [] if depth is None else ["--depth", str(depth)]
    subprocess.run([*clone, str(ROOT), str(source)], check=True)
    before = refs(source)
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "master", str(origin), cwd=tmp_path)
    developer, version = seed_origin(source, str(origin), tmp_path / "developer")
    head = git("rev-parse", "HEAD", cwd=source)
    assert refs(source) == before  # nothing written to the source repository
    master = git("rev-parse", "master", cwd=origin)
    assert git("rev-parse", "dev", cwd=origin) == master
    assert git("cat-file", "-t", f"v{version}", cwd=origin) == "tag"
    assert git("show", "master:VERSION", cwd=origin) == version
    # The released tree is HEAD's but for VERSION and CHANGELOG.md.
    assert tree(source, head) == tree(origin, master)
    assert developer.git("rev-parse", "master") == master


def tree(repository: Path, commit: str) -> set[str]:
    """Every file's blob and path at commit, but the two the release writes."""
    listing = git("ls-tree", "-r", commit, cwd=repository).splitlines()
    return {line for line in listing if line.split("\t")[1] not in RELEASE_WRITES}


RELEASE_WRITES = ("VERSION", "CHANGELOG.md")


def test_the_ruleset_lets_the_bypass_list_past_and_others_with_checks_only(
    tmp_path: Path,
) -> None:
    """The origin over the real git server: the token names the pusher. Off the
    bypass list, master takes no push (pull requests only) and dev only a commit
    that passed the checks, with GitHub's GH013; the bypass token pushes anything."""
    from devstack.binaries import find_binary
    from devstack.gitserver import GitServer, token_header
    from rehearsal.origin import make_clone, protect_branches, record_checks

    find_binary("fcgiwrap", "fcgiwrap")
    with GitServer(pushers={"bot-token": "release-bot", "job-token": "job"}) as server:
        bare = server.create("owner/repo")
        url = server.repository_url("owner/repo")
        work = tmp_path / "work"
        git("init", "-q", "-b", "master", str(work), cwd=tmp_path)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
            "--allow-empty", "-m", "one", cwd=work)  # fmt: skip
        git("push", "-q", url, "master", "master:dev", cwd=work)
        protect_branches(bare, ["release-bot"])
        clone = make_clone(url, tmp_path / "clone")
        before = clone.remote_sha("master")
        refused = clone.push_refused("master", token_header("job-token"))
        assert "GH013: Repository rule violations found" in refused
        assert "refs/heads/master" in refused
        assert "Changes must be made through a pull request" in refused
        assert clone.remote_sha("master") == before
        assert clone.push_refused("master", token_header("bot-token")) == ""
        assert clone.remote_sha("master") != before

        # dev: a commit without checks is refused, the same commit once checked not.
        clone.git("checkout", "-q", "-B", "dev", "origin/dev")
        clone.git("commit", "-q", "--allow-empty", "-m", "two")
        sha = clone.git("rev-parse", "HEAD")

        def push_dev() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["git", "-c", "http.extraHeader=", "-c",
                 f"http.extraHeader={token_header('job-token')}",
                 "push", "-q", "origin", "dev:dev"],  # fmt: skip
                cwd=clone.path,
                capture_output=True,
                text=True,
            )

        unchecked = push_dev()
        assert unchecked.returncode != 0
        assert "Required status checks are expected" in unchecked.stderr
        assert "job is not on the bypass list" in unchecked.stderr
        record_checks(bare, sha)
        assert push_dev().returncode == 0
        assert clone.remote_sha("dev") == sha

        # Unprotected (the fallback): anyone pushes to master.
        protect_branches(bare, [], ["release-bot"])
        assert clone.push_refused("master", token_header("job-token")) == ""


def test_a_workflow_change_needs_the_workflows_permission(tmp_path: Path) -> None:
    """On any branch, a push whose commits change .github/workflows/ is refused
    unless the pusher has the `workflows` permission, as on GitHub."""
    from devstack.binaries import find_binary
    from devstack.gitserver import GitServer, token_header
    from rehearsal.origin import log_pushes, protect_branches, pusher_of

    find_binary("fcgiwrap", "fcgiwrap")
    pushers = {"app-token": "release-app", "job-token": "github-actions"}
    with GitServer(pushers=pushers) as server:
        bare = server.create("owner/repo")
        url = server.repository_url("owner/repo")
        work = tmp_path / "work"
        git("init", "-q", "-b", "hotfix", str(work), cwd=tmp_path)
        (work / "file").write_text("one\n")
        git("add", "-A", cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one",
            cwd=work)  # fmt: skip
        git("push", "-q", url, "hotfix", cwd=work)
        protect_branches(bare, ["release-app", "github-actions"], ["release-app"])
        log = log_pushes(bare)
        (work / ".github" / "workflows").mkdir(parents=True)
        (work / ".github" / "workflows" / "ci.yml").write_text("name: ci\n")
        git("add", "-A", cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ci",
            cwd=work)  # fmt: skip

        def push(token: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["git", "-c", f"http.extraHeader={token_header(token)}", "push",
                 "-q", url, "hotfix"],  # fmt: skip
                cwd=work,
                capture_output=True,
                text=True,
            )

        refused = push("job-token")
        assert refused.returncode != 0
        assert (
            "refusing to allow github-actions to create or update workflow"
            " `.github/workflows/ci.yml` without `workflows` permission"
        ) in refused.stderr
        assert push("app-token").returncode == 0, push("app-token").stderr
        head = git("rev-parse", "HEAD", cwd=work)
        # Who pushed it, as the rehearsal's GitHub reads it (GITHUB_TOKEN: no run).
        assert pusher_of(log, "hotfix", head) == "release-app"
        assert pusher_of(log, "master", head) == ""
