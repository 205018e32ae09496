"""Building Debian images with the real ``rvforge build --provider debootstrap``, for the
fixtures and tests that share one build instead of repeating it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DebianBuild:
    """An image ``rvforge build --provider debootstrap`` made: the file, what the build
    logged, how long it took, and the (private) ``$TMPDIR`` it ran with."""

    image: Path
    log: str
    seconds: float
    scratch: Path


def build_debian(out_dir: Path, name: str, *args: str, cache: Path) -> DebianBuild:
    """Build ``out_dir/name`` from trixie with ``args``, with a ``$TMPDIR`` of its own."""
    scratch = out_dir / "tmp"
    scratch.mkdir()
    started = time.monotonic()
    built = subprocess.run(
        [str(Path(sys.executable).with_name("rvforge")), "build", "--provider", "debootstrap",
         *args, "-o", str(out_dir / name)],
        capture_output=True, text=True, timeout=1500, check=False,
        env={**os.environ, "RVFORGE_CACHE_DIR": str(cache), "TMPDIR": str(scratch)})
    assert built.returncode == 0, built.stderr[-3000:]
    return DebianBuild(out_dir / name, built.stderr, time.monotonic() - started, scratch)
