"""A build caught while packing, for the tests of what an interrupted or killed build leaves:
its source is a tarball (whose reader uses a scratch directory in ``$TMPDIR``) holding
48 MB of noise, which xz takes seconds to pack, so the build is surely mid-pack when
:func:`packing_build` returns."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NOISE_BYTES = 48 << 20
RVFORGE = str(Path(sys.executable).with_name("rvforge"))


@dataclass
class PackingBuild:
    """``rvforge build ... -o out/image.cpio.xz`` with ``TMPDIR=tmp``, packing now.

    :param process: the build (stderr piped, as text).
    :param root: the directory the tarball was made from (the noise still in it).
    :param tmp: the build's ``$TMPDIR``.
    :param out: the output directory.
    """

    process: subprocess.Popen[str]
    root: Path
    tmp: Path
    out: Path


def packing_build(tmp_path: Path, preexec_fn: Callable[[], None] | None = None,
                  timeout: float = 120) -> PackingBuild:
    """Start the build and return once its ``.part`` output exists (asserting it gets
    there within ``timeout`` seconds)."""
    root, tmp, out = tmp_path / "root", tmp_path / "tmp", tmp_path / "out"
    for directory in (root, tmp, out):
        directory.mkdir()
    (root / "noise").write_bytes(os.urandom(NOISE_BYTES))
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as archive:
        archive.add(root, arcname=".")
    process = subprocess.Popen(
        [RVFORGE, "--quiet", "build", "--provider", "local", "--source", str(tarball),
         "-o", str(out / "image.cpio.xz"), "--no-audit", "--isa", "rv64gc"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)},
        preexec_fn=preexec_fn)
    deadline = time.monotonic() + timeout
    while not list(out.glob(".*.part")) and process.poll() is None:
        assert time.monotonic() < deadline, "the build never started packing"
        time.sleep(0.05)
    return PackingBuild(process, root, tmp, out)
