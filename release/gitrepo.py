"""The git side of a release, through GitPython: read history, commit, tag, push."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from git import Repo
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from release.errors import Refusal, ReleaseFailure
from release.history import LOG_FORMAT, CommitLog

# Rejections that mean "someone else pushed first": fetch, recompute, try again.
_LOST_RACE = (
    "fetch first",
    "non-fast-forward",
    "already exists",
    "atomic push failed",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
)
# Used only when git has no identity configured (a bare CI runner).
FALLBACK_IDENTITY = {"name": "prework release", "email": "release@prework.invalid"}


class GitRepository:
    """A work tree the release tool reads and writes; close it (or use `with`)."""

    def __init__(self, root: Path) -> None:
        try:
            self._repo = Repo(root)
        except (InvalidGitRepositoryError, NoSuchPathError) as error:
            raise Refusal(f"{root} is not a git repository") from error
        self.root = root
        self._identity: dict[str, str] | None = None

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._repo.close()

    def current_branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        head = self._repo.head
        return None if head.is_detached else head.ref.name

    def is_shallow(self) -> bool:
        """True for a shallow clone (history cut off)."""
        return Path(self._repo.common_dir, "shallow").exists()

    def is_dirty(self) -> bool:
        """True when tracked files differ from HEAD (untracked files do not count)."""
        return self._repo.is_dirty(untracked_files=False)

    def tag_names(self) -> list[str]:
        """Every tag name in the repository."""
        return [tag.name for tag in self._repo.tags]

    def commits(self, since: str | None) -> CommitLog:
        """Commits in `since..HEAD` (all history without `since`): one git process."""
        revision = f"{since}..HEAD" if since else "HEAD"
        try:
            output = self._repo.git.log("-z", LOG_FORMAT, revision, "--")
        except GitCommandError as error:
            raise Refusal(
                f"cannot read history {revision}: {_last_line(error)}"
            ) from error
        return CommitLog(output)

    def commit_of(self, revision: str) -> str:
        """The commit sha a revision (branch, tag, HEAD) points at."""
        try:
            return str(self._repo.git.rev_parse("--verify", f"{revision}^{{commit}}"))
        except GitCommandError as error:
            raise Refusal(f"unknown revision {revision!r}") from error

    def contains(self, revision: str) -> bool:
        """True when HEAD's history reaches `revision`."""
        try:
            self._repo.git.merge_base("--is-ancestor", revision, "HEAD")
        except GitCommandError as error:
            if error.status == 1:
                return False
            raise ReleaseFailure(
                f"git merge-base failed: {_last_line(error)}"
            ) from error
        return True

    def commit_files(self, paths: list[str], message: str) -> None:
        """Commit exactly `paths` with `message` (no hooks: the message is ours)."""
        self._git("add", "--", *paths)
        self._git(
            "commit",
            "--no-verify",
            "-m",
            message,
            "--",
            *paths,
            env=self._identity_env(),
        )

    def create_tag(self, name: str, message: str) -> None:
        """An annotated tag at HEAD whose message is kept verbatim (`#` lines too)."""
        self._git(
            "tag",
            "-a",
            "--cleanup=verbatim",
            "-m",
            message,
            name,
            env=self._identity_env(),
        )

    def undo_release(self, start: str, tag: str | None) -> None:
        """Drop a local release commit (and tag) after losing a push race."""
        if tag is not None:
            self._git("tag", "-d", tag)
        self._git("reset", "--hard", start)

    def push(self, remote: str, branch: str, tag: str | None) -> bool:
        """Push HEAD to `branch` and the tag atomically; False when another run won."""
        refspecs = [f"HEAD:refs/heads/{branch}"]
        if tag is not None:
            refspecs.append(f"refs/tags/{tag}:refs/tags/{tag}")
        try:
            self._repo.git.push("--atomic", "--porcelain", remote, *refspecs)
        except GitCommandError as error:
            report = f"{error.stdout}\n{error.stderr}"
            if any(reason in report for reason in _LOST_RACE):
                return False
            raise ReleaseFailure(
                f"git push to {remote} failed: {_last_line(error)}"
            ) from error
        return True

    def catch_up(self, remote: str, branch: str) -> None:
        """Fetch the remote branch and its tags, then merge it into HEAD."""
        tracking = f"refs/remotes/{remote}/{branch}"
        self._git("fetch", "--tags", remote, f"+refs/heads/{branch}:{tracking}")
        try:
            self._repo.git.merge("--no-edit", "--no-verify", tracking)
        except GitCommandError as error:
            # A conflict leaves a merge to abort; a refused merge (unrelated
            # histories) leaves none, and then the abort itself fails.
            self._repo.git.merge("--abort", with_exceptions=False)
            raise ReleaseFailure(
                f"cannot merge {remote}/{branch} into HEAD: {_last_line(error)}"
            ) from error

    def _git(self, command: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one git command; its failure becomes a one-line ReleaseFailure."""
        try:
            return str(getattr(self._repo.git, command)(*args, env=env or {}))
        except GitCommandError as error:
            raise ReleaseFailure(
                f"git {command} failed: {_last_line(error)}"
            ) from error

    def _identity_env(self) -> dict[str, str]:
        """Extra environment for commits: a fallback identity only when git has none."""
        if self._identity is None:
            try:
                self._repo.git.var("GIT_COMMITTER_IDENT")
                self._repo.git.var("GIT_AUTHOR_IDENT")
                self._identity = {}
            except GitCommandError:
                name, email = FALLBACK_IDENTITY["name"], FALLBACK_IDENTITY["email"]
                self._identity = {
                    "GIT_AUTHOR_NAME": name,
                    "GIT_AUTHOR_EMAIL": email,
                    "GIT_COMMITTER_NAME": name,
                    "GIT_COMMITTER_EMAIL": email,
                }
        return self._identity


def _last_line(error: GitCommandError) -> str:
    text = str(error.stderr).strip() or str(error.stdout).strip() or str(error)
    lines = [line.strip(" '\"") for line in text.splitlines() if line.strip(" '\"")]
    return lines[-1] if lines else str(error.status)
