"""The rehearsal's GitHub repository: a throwaway copy of the checkout's committed HEAD.

The developer's repository is only read (`git clone` of HEAD); its branches, remotes
and work tree are never touched. The origin starts as HEAD released by the project's
own tool on `master` (tag vX.Y.Z) with `dev` cut from it, and a developer's clone
(`work`) pushes to it as people would.
"""

from __future__ import annotations

import subprocess  # nosec B404 - git
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rehearsal.act import git

OWNER_REPO = "prework/prework"


class SeedFailed(RuntimeError):
    """The origin could not be made (the release tool refused); the reason."""


DEVELOPER = ("Rehearsal Developer", "developer@rehearsal.invalid")


def head_of(source: Path) -> str:
    """The committed HEAD of the developer's checkout (uncommitted work is not used)."""
    return git(source, "rev-parse", "HEAD")


@dataclass
class Clone:
    """A developer's clone of the origin, for commits, merges and pushes."""

    path: Path

    def git(self, *args: str) -> str:
        """`git ARGS` in the clone."""
        return git(self.path, *args)

    def commit_change(
        self,
        branch: str,
        message: str,
        name: str,
        files: Mapping[str, str | None] | None = None,
    ) -> str:
        """A commit on `branch` (from origin) that touches docs/rehearsal/<name>,
        and writes (text) or removes (None) each of `files` (paths in the tree)."""
        self.git("fetch", "-q", "origin")
        if self.remote_sha(branch) != "0" * 40:
            self.git("checkout", "-q", "-B", branch, f"origin/{branch}")
        else:  # a new branch, made by branch_from
            self.git("checkout", "-q", branch)
        changed = {f"docs/rehearsal/{name}.md": f"{message}\n", **(files or {})}
        for path, text in changed.items():
            if text is None:
                self.git("rm", "-q", path)
                continue
            (self.path / path).parent.mkdir(parents=True, exist_ok=True)
            (self.path / path).write_text(text)
            self.git("add", path)
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def branch_from(self, branch: str, start: str) -> None:
        """A new local branch at origin/<start>."""
        self.git("fetch", "-q", "origin")
        self.git("checkout", "-q", "-B", branch, f"origin/{start}")

    def merge_no_ff(self, source: str, target: str, message: str) -> str:
        """A pull-request-style merge commit of origin/<source> into <target>."""
        self.git("fetch", "-q", "origin")
        self.git("checkout", "-q", "-B", target, f"origin/{target}")
        self.git("merge", "-q", "--no-ff", f"origin/{source}", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, branch: str) -> tuple[str, str]:
        """Push the local branch; (before, after) of the remote branch."""
        before = self.remote_sha(branch)
        self.git("push", "-q", "origin", f"{branch}:{branch}")
        return before, self.git("rev-parse", branch)

    def push_refused(self, branch: str, header: str) -> str:
        """Push a new commit on top of origin/<branch> with this Authorization
        header alone; git's error output when the origin refused it, else ''."""
        self.git("fetch", "-q", "origin")
        tree = self.git("rev-parse", f"origin/{branch}^{{tree}}")
        probe = self.git(
            "commit-tree", tree, "-p", f"origin/{branch}", "-m", "chore: probe"
        )
        result = subprocess.run(  # nosec B603 B607 - argv built here
            ["git", "-c", "http.extraHeader=", "-c", f"http.extraHeader={header}"]
            + ["push", "-q", "origin", f"{probe}:refs/heads/{branch}"],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stderr if result.returncode != 0 else ""

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ancestor is in descendant's history."""
        code = subprocess.run(  # nosec B603 B607 - fixed argv
            ["git", "merge-base", "--is-ancestor", ancestor, descendant],
            cwd=self.path,
            check=False,
        ).returncode
        return code == 0

    def remote_sha(self, branch: str) -> str:
        """The origin's tip of branch (all zeros when absent)."""
        line = self.git("ls-remote", "origin", f"refs/heads/{branch}")
        return line.split()[0] if line else "0" * 40

    def show(self, ref: str, path: str) -> str:
        """A file at ref on the origin (fetched first)."""
        return self.git("show", f"{ref}:{path}")

    def tags(self) -> list[str]:
        """Every tag on the origin."""
        lines = self.git("ls-remote", "--tags", "--refs", "origin").splitlines()
        return sorted(line.split("refs/tags/")[1] for line in lines)


# GitHub's protection as a ruleset on master and dev, as a pre-receive hook (the
# pusher comes from the token; devstack.gitserver). An identity on the bypass list
# (mode "always") pushes past every rule. Anyone else needs a pull request on master
# and, on dev, the required status checks passed on the pushed commit (the commits
# rehearsal.github saw pass ci.yml's jobs, in CHECKS_LOG). On any branch, commits that
# change .github/workflows/ need an identity with the `workflows` permission
# (GITHUB_TOKEN never has it). The messages are GitHub's.
CHECKS_LOG = "rehearsal-checks-passed.log"
PROTECTION_HOOK = """#!/bin/sh
zero=0000000000000000000000000000000000000000
refuse() {{
  echo "GH013: Repository rule violations found for $ref." >&2
  echo "- $1" >&2
  exit 1
}}
while read -r old new ref; do
  case "$ref" in
    {protected})
      case " {allowed} " in
        *" $REMOTE_USER "*) ;;
        *) pr="Changes must be made through a pull request."
           [ "$ref" = refs/heads/dev ] || refuse "$pr"
           checks="Required status checks are expected: none passed on $new"
           [ "$new" = "$zero" ] || grep -qx "$new" {checks} 2>/dev/null \\
             || refuse "$checks ($REMOTE_USER is not on the bypass list)." ;;
      esac ;;
  esac
  [ "$new" = "$zero" ] && continue
  if [ "$old" = "$zero" ]; then range="$new --not --all"; else range="$old..$new"; fi
  # shellcheck disable=SC2086 # range is two or three words
  changed=$(git log --format= --name-only $range -- .github/workflows/ | grep -m 1 .)
  if [ -n "$changed" ]; then
    case " {workflows} " in
      *" $REMOTE_USER "*) ;;
      *) echo "refusing to allow $REMOTE_USER to create or update workflow" \\
              "\\`$changed\\` without \\`workflows\\` permission" >&2
         exit 1 ;;
    esac
  fi
done
"""


def protect_branches(
    bare: Path, allowed: list[str], workflows: list[str] | None = None
) -> None:
    """The ruleset on master and dev with `allowed` as its bypass list, and workflow
    changes on any branch refused from anyone not in `workflows` (default:
    `allowed`). An empty `allowed`: no ruleset, the workflows rule alone."""
    hook = bare / "hooks" / "pre-receive"
    text = PROTECTION_HOOK.format(
        # A pattern no ref matches, when unprotected.
        protected="refs/heads/master | refs/heads/dev" if allowed else "''",
        allowed=" ".join(allowed),
        checks=CHECKS_LOG,
        workflows=" ".join(workflows or allowed),
    )
    hook.write_text(text)
    hook.chmod(0o755)


def record_checks(bare: Path, sha: str) -> None:
    """sha passed the required checks (ci.yml's jobs), as GitHub records it."""
    with (bare / CHECKS_LOG).open("a") as log:
        log.write(f"{sha}\n")


# Who pushed what: GitHub starts no workflow run for a push made with GITHUB_TOKEN
# (rehearsal.github reads this log to tell).
PUSHES_LOG = "rehearsal-pushes.log"
PUSHES_HOOK = f"""#!/bin/sh
while read -r old new ref; do
  echo "$new $ref $REMOTE_USER" >> {PUSHES_LOG}
done
"""


def log_pushes(bare: Path) -> Path:
    """Record each ref update's pusher in the bare repository; the log's path."""
    hook = bare / "hooks" / "post-receive"
    hook.write_text(PUSHES_HOOK)
    hook.chmod(0o755)
    return bare / PUSHES_LOG


def pusher_of(log: Path, branch: str, sha: str) -> str:
    """Who pushed sha to branch, by the log ('' when not recorded)."""
    if not log.exists():
        return ""
    found = ""
    for line in log.read_text().splitlines():
        new, ref, *who = line.split(" ", 2)
        if new == sha and ref == f"refs/heads/{branch}":
            found = who[0] if who else ""
    return found


def make_clone(url: str, folder: Path, source: Path | None = None) -> Clone:
    """Clone `source` (or url) into folder, with origin set to url."""
    subprocess.run(  # nosec B603 B607 - fixed argv
        ["git", "clone", "-q", "--no-hardlinks", str(source or url), str(folder)],
        check=True,
    )
    clone = Clone(folder)
    clone.git("remote", "set-url", "origin", url)
    clone.git("config", "user.name", DEVELOPER[0])
    clone.git("config", "user.email", DEVELOPER[1])
    return clone


def seed_origin(source: Path, url: str, folder: Path) -> tuple[Clone, str]:
    """Push HEAD of `source`, released on master with dev cut from it; the version."""
    if git(source, "rev-parse", "--is-shallow-repository") == "true":
        clone = tree_only_clone(source, url, folder)
    else:
        clone = make_clone(url, folder, source)
        clone.git("checkout", "-q", "-B", "master", head_of(source))
    release = subprocess.run(  # nosec B603 - the project's own release tool
        [sys.executable, "-m", "release", "bump", "--branch", "master"],
        cwd=clone.path,
        env=clone_env(clone.path),
        capture_output=True,
        text=True,
        check=False,
    )
    if release.returncode != 0:
        raise SeedFailed(f"python -m release bump on master: {release.stderr.strip()}")
    version = release.stdout.strip().splitlines()[-1]
    clone.git("push", "-q", "origin", "master", f"refs/tags/v{version}")
    clone.git("push", "-q", "origin", "master:dev")
    return clone, version


def tree_only_clone(source: Path, url: str, folder: Path) -> Clone:
    """A repository holding HEAD's tree as one commit (the source is shallow, as a
    CI checkout is: the release tool needs whole history, which it does not have)."""
    folder.mkdir(parents=True)
    git(folder, "init", "-q", "-b", "master")
    archive = subprocess.run(  # nosec B603 B607 - fixed argv
        ["git", "-C", str(source), "archive", "--format=tar", "HEAD"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(  # nosec B603 B607 - fixed argv
        ["tar", "-x", "-C", str(folder)], input=archive, check=True
    )
    clone = Clone(folder)
    clone.git("remote", "add", "origin", url)
    clone.git("config", "user.name", DEVELOPER[0])
    clone.git("config", "user.email", DEVELOPER[1])
    clone.git("add", "-A")
    title = git(source, "log", "-1", "--format=%s")
    clone.git("commit", "-q", "-m", f"{title}\n\nThe tree of a shallow checkout.")
    return clone


def clone_env(path: Path) -> dict[str, str]:
    """The environment to run the clone's own `python -m release` in."""
    import os

    # Outside any CI: a GITHUB_* variable would make the tool act for that run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PYTHONPATH"] = str(path)
    return env
