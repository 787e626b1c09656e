"""The git side of a release, through GitPython: read history, commit, tag, push."""

from __future__ import annotations

import os
import tempfile
from enum import Enum
from pathlib import Path
from types import TracebackType

from git import Repo
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from release.errors import Refusal, ReleaseFailure
from release.history import LOG_FORMAT, CommitLog, decode_messages
from release.ownership import CommitFacts, sync_tag

# Why git rejects a ref when someone else pushed first: fetch, recompute, retry.
_MOVED = (
    "fetch first",
    "non-fast-forward",
    "already exists",
    "stale info",
    "failed to update ref",
    "cannot lock ref",
    "incorrect old value",
)
# What --atomic says of the other refs of a push one ref of which was rejected.
_ATOMIC = ("atomic push failed", "atomic transaction failed")


class PushResult(Enum):
    """A push landed, or lost the race to another push (refusals raise)."""

    PUSHED = "pushed"
    MOVED = "moved"


# A person's git config must not change what the tool's own git commands do:
# a race loser fast-forwards even with merge.ff=false, the log stays parseable
# with log.showSignature, a push carries only the release's refs. Signing and
# hooks stay the user's: they are policy, not behaviour.
CONFIG_OVERRIDES = (
    "merge.ff=true",
    "merge.autoStash=false",
    "rerere.enabled=false",
    "log.showSignature=false",
    "color.ui=false",
    "push.followTags=false",
)
_OVERRIDE_ARGS = tuple(arg for item in CONFIG_OVERRIDES for arg in ("-c", item))

_GIT = ("git", *_OVERRIDE_ARGS)
# `git merge-tree --write-tree` (sync) came with 2.38; the rest needs far less,
# so only sync asks (`next` and `bump` run no extra process for it).
MERGE_TREE_GIT = (2, 38)

# Used only when git has no identity configured (a bare CI runner).
FALLBACK_IDENTITY = {"name": "prework release", "email": "release@prework.invalid"}


class GitRepository:
    """A work tree the release tool reads and writes; close it (or use `with`)."""

    def __init__(self, root: Path) -> None:
        try:
            self._repo = Repo(root)
        except (InvalidGitRepositoryError, NoSuchPathError) as error:
            raise Refusal(f"{root} is not a git repository") from error
        self._repo.git.set_persistent_git_options(c=list(CONFIG_OVERRIDES))
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
            # UTF-8 whatever i18n.commitEncoding says: a latin1 history reads right.
            output = self._repo.git.log(
                "-z",
                "--encoding=UTF-8",
                LOG_FORMAT,
                revision,
                "--",
                stdout_as_string=False,
            )
        except GitCommandError as error:
            raise Refusal(
                f"cannot read history {revision}: {_last_line(error)}"
            ) from error
        return CommitLog(decode_messages(output))

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

    def commit_facts(self, revision: str, version_file: str) -> CommitFacts:
        """Parents, message, changed files and version file of one commit."""
        sha = self.commit_of(revision)
        try:
            header = decode_messages(
                self._repo.git.log(
                    "-1",
                    "--encoding=UTF-8",
                    "--format=%P%n%B",
                    sha,
                    stdout_as_string=False,
                )
            )
        except GitCommandError as error:
            raise ReleaseFailure(f"git log failed: {_last_line(error)}") from error
        parents_line, _, message = header.partition("\n")
        parents = tuple(parents_line.split())
        # A merge lists nothing here (no combined diff): only bumps are checked.
        changed = self._git(
            "diff_tree", "--no-commit-id", "--name-only", "-r", "-z", "--root", sha
        )
        tag = sync_tag(message)
        return CommitFacts(
            sha=sha,
            parents=parents,
            message=message.strip("\n"),
            changed_files=tuple(name for name in changed.split("\0") if name),
            version_text=self.file_at(sha, version_file),
            tag_commit=self.commit_or_none(tag) if tag else None,
        )

    def commit_or_none(self, revision: str) -> str | None:
        """The commit `revision` names, or None when it names none."""
        try:
            return self.commit_of(revision)
        except Refusal:
            return None

    def file_at(self, revision: str, path: str) -> str | None:
        """A file's text at `revision`, or None when it has no such file."""
        status, out, _ = self._repo.git.execute(
            [*_GIT, "cat-file", "blob", f"{revision}:{path}"],
            with_exceptions=False,
            with_extended_output=True,
            strip_newline_in_stdout=False,
        )
        return str(out) if status == 0 else None

    def is_ignored(self, path: str) -> bool:
        """True when a .gitignore rule keeps `path` out of commits."""
        status = self._repo.git.execute(
            [*_GIT, "check-ignore", "-q", "--no-index", path],
            with_exceptions=False,
            with_extended_output=True,
        )[0]
        return status == 0

    def commit_files(self, paths: list[str], message: str) -> None:
        """Commit exactly `paths` with `message`; hooks and signing as configured."""
        self._git("add", "--", *paths)
        self._git(
            "commit",
            "-q",
            "--cleanup=strip",
            "-m",
            message,
            "--",
            *paths,
            env=self._identity_env(),
        )

    def create_tag(self, name: str, message: str) -> None:
        """An annotated tag at HEAD whose message is kept verbatim (`#` lines too).

        The message goes through a file: a first release over a long history
        has notes far above the 128 KiB one argument may hold.
        """
        with tempfile.TemporaryDirectory(prefix="release-tag-") as folder:
            path = Path(folder, "message")
            path.write_text(message, encoding="utf-8")
            self._git(
                "tag",
                "-a",
                "--cleanup=verbatim",
                "-F",
                str(path),
                name,
                env=self._identity_env(),
            )

    def has_tag(self, name: str) -> bool:
        """True when the tag exists."""
        return self.commit_or_none(f"refs/tags/{name}") is not None

    def undo_release(self, start: str, tag: str | None) -> None:
        """Drop a local release commit (and tag): back to `start`, index and files."""
        if tag is not None and self.has_tag(tag):
            self._git("tag", "-d", tag)
        self._git("reset", "-q", "--hard", start)

    def push(self, remote: str, branch: str, tag: str | None) -> PushResult:
        """Push HEAD to `branch` (and the tag) atomically, never forcing.

        MOVED when another push got there first; any other rejection raises a
        ReleaseFailure carrying the remote's own reason, and is not retried.
        """
        refspecs = [f"HEAD:refs/heads/{branch}"]
        if tag is not None:
            refspecs.append(f"refs/tags/{tag}:refs/tags/{tag}")
        status, out, err = self._repo.git.execute(
            [*_GIT, "push", "--atomic", "--porcelain", remote, *refspecs],
            with_exceptions=False,
            with_extended_output=True,
        )
        if status == 0:
            return PushResult.PUSHED
        reasons = [
            line.rsplit("\t", 1)[-1]
            for line in str(out).splitlines()
            if line.startswith("!")
        ]
        if not reasons:  # nothing was rejected: the push never got that far
            raise ReleaseFailure(
                f"git push to {remote} failed: {_plain_text(str(err))}"
            )
        others = [r for r in reasons if not any(w in r for w in (*_MOVED, *_ATOMIC))]
        said = "\n".join(reasons) + "\n" + str(err)
        if not others and any(word in said for word in _MOVED):
            return PushResult.MOVED
        raise ReleaseFailure(
            f"git push to {remote} refused: {_push_reason(str(err), reasons)}"
        )

    def fetch_branch(self, remote: str, branch: str) -> str | None:
        """Fetch `branch` and the tags from `remote`; its tip, None if it has none."""
        tracking = f"refs/remotes/{remote}/{branch}"
        self._git("fetch", "-q", "--tags", remote, f"+refs/heads/{branch}:{tracking}")
        return self.commit_or_none(tracking)

    def catch_up(self, remote: str, branch: str) -> None:
        """Fetch the remote branch and its tags, then merge it into HEAD."""
        tracking = f"refs/remotes/{remote}/{branch}"
        self.fetch_branch(remote, branch)
        try:
            self._repo.git.merge(
                "--ff", "--no-edit", "--no-verify", tracking, env=self._identity_env()
            )
        except GitCommandError as error:
            # A conflict leaves a merge to abort; a refused merge (unrelated
            # histories) leaves none, and then the abort itself fails.
            self._repo.git.merge("--abort", with_exceptions=False)
            raise ReleaseFailure(
                f"cannot merge {remote}/{branch} into HEAD: {_last_line(error)}"
            ) from error

    def fast_forward(self, commit: str) -> None:
        """Move the checked-out branch, index and files forward to `commit`.

        Untracked files in the way stop it before anything moves: they are named.
        """
        try:
            self._repo.git.merge("-q", "--ff-only", commit)
        except GitCommandError as error:
            in_the_way = [
                line.strip()
                for line in str(error.stderr).splitlines()
                if line.startswith("\t")
            ]
            if "untracked working tree files" in str(error.stderr) and in_the_way:
                raise Refusal(
                    f"untracked files in the way: {', '.join(in_the_way)}: "
                    "move or remove them"
                ) from error
            raise ReleaseFailure(f"git merge failed: {_last_line(error)}") from error

    def merge_tree(self, ours: str, theirs: str) -> tuple[str, list[str]]:
        """The merged tree of two commits (nothing touched) and its conflicted paths."""
        found = self._repo.git.version_info
        if found < MERGE_TREE_GIT:
            raise Refusal(
                f"git {'.'.join(map(str, found))} found: sync needs git "
                f"{'.'.join(map(str, MERGE_TREE_GIT))} or newer "
                "(git merge-tree --write-tree)"
            )
        status, out, err = self._repo.git.execute(
            [*_GIT, "merge-tree", "--write-tree", "--name-only", "-z", ours, theirs],
            with_exceptions=False,
            with_extended_output=True,
            strip_newline_in_stdout=False,
        )
        if status not in (0, 1):
            raise ReleaseFailure(
                f"git merge-tree failed: {_first_line(str(err)) or status}"
            )
        tree, _, rest = str(out).partition("\0")
        conflicted = rest.split("\0\0", 1)[0].split("\0") if status == 1 else []
        return tree, sorted({name for name in conflicted if name})

    def tree_with(self, tree: str, files: dict[str, str]) -> str:
        """`tree` with the given files' contents replaced (a new tree object)."""
        with tempfile.TemporaryDirectory(prefix="release-index-") as folder:
            env = {"GIT_INDEX_FILE": os.path.join(folder, "index")}
            self._git("read_tree", tree, env=env)
            for number, (path, text) in enumerate(files.items()):
                content = Path(folder, f"blob-{number}")
                content.write_text(text, encoding="utf-8")
                blob = self._git("hash_object", "-w", "--path", path, str(content))
                self._git(
                    "update_index",
                    "--add",
                    "--cacheinfo",
                    f"100644,{blob},{path}",
                    env=env,
                )
            return self._git("write_tree", env=env)

    def commit_tree(self, tree: str, parents: list[str], message: str) -> str:
        """A commit object, signed when commit.gpgSign says so; no ref moves."""
        args = [arg for parent in parents for arg in ("-p", parent)]
        # commit-tree itself ignores commit.gpgSign: ask for the signature.
        signing = self._repo.git.config(
            "--bool", "--get", "commit.gpgSign", with_exceptions=False
        )
        if str(signing).strip() == "true":
            args.append("-S")
        return self._git(
            "commit_tree",
            tree,
            *args,
            "-m",
            message.rstrip("\n"),
            env=self._identity_env(),
        )

    def _git(self, command: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one git command; its failure becomes a one-line ReleaseFailure."""
        try:
            return str(getattr(self._repo.git, command)(*args, env=env or {}))
        except GitCommandError as error:
            raise ReleaseFailure(
                f"git {command.replace('_', '-')} failed: {_last_line(error)}"
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
    """git's last line of error, hints left out."""
    text = str(error.stderr).strip() or str(error.stdout).strip() or str(error)
    lines = [line.strip(" '\"") for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("hint:")]
    return lines[-1] if lines else str(error.status)


def _plain_text(text: str) -> str:
    """git's whole message on one line, hints left out (its last line alone may be
    "and the repository exists.")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("hint:")]
    return " ".join(lines) if lines else "git push failed"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _push_reason(stderr: str, reasons: list[str]) -> str:
    """The remote's own words (`remote: GH006: ...`), else git's per-ref reason."""
    remote = [
        line.strip()
        for line in stderr.splitlines()
        if line.startswith("remote:") and line.removeprefix("remote:").strip()
    ]
    if remote:
        return " ".join(remote)
    useful = [r for r in reasons if not any(word in r for word in _ATOMIC)]
    if useful:
        return useful[0]
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "git push failed"
