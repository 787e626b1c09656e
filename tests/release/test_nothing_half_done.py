"""A bump that fails after it started writing leaves everything as it was."""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - the full-disk case runs the CLI in a namespace
import sys
from pathlib import Path

import pytest

from tests.release.gitworld import Clone, everything, write_hook

FAILING_GPG = "echo 'gpg: signing failed: No secret key' >&2\nexit 2\n"


def failing_gpg(tmp_path: Path) -> Path:
    """A gpg.program that refuses to sign anything."""
    program = tmp_path / "failing-gpg"
    program.write_text("#!/bin/sh\n" + FAILING_GPG)
    program.chmod(0o755)
    return program


def on_master_ready_to_release(dev: Clone) -> Clone:
    dev.commit("fix: one")
    dev.bump()
    dev.checkout("master")
    dev.git("merge", "-q", "--no-ff", "--no-edit", "dev")
    return dev


def assert_failed_and_untouched(clone: Clone, code: int, *words: str) -> None:
    before = everything(clone)
    result = clone.release("bump")
    assert result.code == code, result
    assert result.out == "" and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err
    assert everything(clone) == before
    assert clone.git("tag", "--list", "v0.1.1") == ""


def test_commit_signing_fails(dev: Clone, tmp_path: Path) -> None:
    on_master_ready_to_release(dev)
    dev.git("config", "commit.gpgSign", "true")
    dev.git("config", "gpg.program", str(failing_gpg(tmp_path)))
    assert_failed_and_untouched(dev, 1, "git commit failed", "nothing was changed")


def test_tag_signing_fails_after_the_commit(dev: Clone, tmp_path: Path) -> None:
    on_master_ready_to_release(dev)
    dev.git("config", "tag.gpgSign", "true")
    dev.git("config", "gpg.program", str(failing_gpg(tmp_path)))
    assert_failed_and_untouched(dev, 1, "git tag failed", "nothing was changed")
    dev.git("config", "tag.gpgSign", "false")
    assert dev.bump() == "0.1.1"  # a re-run after the fix works
    assert dev.tags() == ["v0.1.0", "v0.1.1"]


@pytest.mark.parametrize("hook", ["pre-commit", "commit-msg"])
def test_a_refusing_hook(dev: Clone, hook: str) -> None:
    dev.commit("fix: one")
    write_hook(dev.path, hook, "echo 'refused by policy' >&2\nexit 1\n")
    assert_failed_and_untouched(dev, 1, "nothing was changed")


def test_an_ignored_changelog_is_refused_before_anything_is_written(
    dev: Clone,
) -> None:
    on_master_ready_to_release(dev)
    (dev.path / ".gitignore").write_text("CHANGELOG.md\n")
    dev.git("add", ".gitignore")
    dev.commit("chore: ignore the changelog")
    (dev.path / "CHANGELOG.md").write_text("a person's own notes\n")
    assert_failed_and_untouched(dev, 2, "CHANGELOG.md is git-ignored")


def test_a_changelog_that_cannot_be_written(dev: Clone) -> None:
    on_master_ready_to_release(dev)
    (dev.path / "CHANGELOG.md").mkdir()
    (dev.path / "CHANGELOG.md" / "keep").write_text("untracked\n")
    assert_failed_and_untouched(dev, 1, "Is a directory", "nothing was changed")
    assert (dev.path / "VERSION").read_text() == "0.1.1-dev.1\n"


FULL_DISK = """set -e
mount -t tmpfs -o size=1m tmpfs "$DISK"
cp -a "$WORK" "$DISK/work"
cd "$DISK/work"
state() {
  git rev-parse HEAD; git for-each-ref; git ls-files --stage
  git status --porcelain --ignored; cat VERSION; ls
}
state > "$OUT/before"
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null || true
set +e
"$PYTHON" -m release bump > "$OUT/stdout" 2> "$OUT/stderr"
echo $? > "$OUT/code"
set -e
rm "$DISK/filler"
state > "$OUT/after"
"""


def test_a_full_disk(dev: Clone, tmp_path: Path) -> None:
    """A real full disk: a 1 MiB tmpfs, filled up, in a mount namespace of its own."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs unshare: install the Debian package util-linux")
    on_master_ready_to_release(dev)
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    env = dict(
        os.environ,
        DISK=str(disk),
        WORK=str(dev.path),
        OUT=str(out),
        PYTHON=sys.executable,
    )
    probe = subprocess.run(  # nosec B603 - unshare from PATH, fixed argv
        [unshare, "-Urm", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.strip()}")
    trial = subprocess.run(  # nosec B603 - unshare from PATH, fixed argv
        [unshare, "-Urm", "sh", "-c", FULL_DISK],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert trial.returncode == 0, trial.stderr
    err = (out / "stderr").read_text()
    assert (out / "code").read_text().strip() == "1", err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert (out / "stdout").read_text() == ""
    assert (out / "after").read_text() == (out / "before").read_text()
