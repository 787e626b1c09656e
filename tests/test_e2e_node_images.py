"""The several-node e2e's image fan-out: one `docker save` stream copied into every
node's `docker load` and the cache's file. Real processes stand in for docker here
(`cat` reads as `docker load` does; `head -c` stops reading early, as a failing load
would); the e2e itself streams real images into real engines."""

from __future__ import annotations

import subprocess  # nosec B404 - cat and head stand in for docker load
from pathlib import Path

from e2e.nodes import CHUNK, copy_to_all

PIPE = subprocess.PIPE


def reader(argv: list[str], out: Path) -> subprocess.Popen[bytes]:
    """A process that reads its input as `docker load` would, into `out`."""
    return subprocess.Popen(  # nosec B603 - fixed argv
        argv, stdin=PIPE, stdout=out.open("wb"), stderr=PIPE
    )


def test_every_reader_and_the_kept_file_get_the_whole_stream(tmp_path: Path) -> None:
    payload = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    source = tmp_path / "saved"
    source.write_bytes(payload)
    save = subprocess.Popen(  # nosec B603 B607 - fixed argv
        ["cat", str(source)], stdout=PIPE
    )
    outs = [tmp_path / f"load{number}" for number in range(3)]
    loads = [reader(["cat"], out) for out in outs]
    # One load that stops reading after a few bytes: the others are not held up.
    stopped = reader(["head", "-c", "10"], tmp_path / "stopped")
    copy_to_all(save, [*loads, stopped], tmp_path / "kept")
    assert save.wait(timeout=30) == 0
    assert [load.wait(timeout=30) for load in loads] == [0, 0, 0]
    assert stopped.wait(timeout=30) == 0
    assert (tmp_path / "kept").read_bytes() == payload
    assert all(out.read_bytes() == payload for out in outs)
    assert (tmp_path / "stopped").read_bytes() == payload[:10]
