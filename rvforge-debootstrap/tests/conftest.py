"""Fixtures of rvforge-debootstrap's tests.

``debian_cache``: one download cache for the whole session (``$XDG_CACHE_HOME/rvforge`` when
set, so CI and developers reuse it across runs; else a directory under pytest's basetemp),
so each ``.deb`` and index is fetched once. ``debian_archive``: trixie riscv64 on the host's
mirror, index parsed once per session. ``debian_default_image``: the image of the README's
one-liner (``rvforge build --provider debootstrap -o debian.cpio.gz``), configured at build
time, built once per session (a VM configuration takes 2-5 minutes here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rvforge import BuildContext
from rvforge.registry import build_registry

from rvforge_debootstrap.archive import DebianArchive


@pytest.fixture(scope="session")
def debian_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "rvforge"
    return tmp_path_factory.getbasetemp() / "debian-cache"


@pytest.fixture(scope="session")
def session_ctx(debian_cache: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[BuildContext]:
    with BuildContext(build_registry(), cache_dir=debian_cache,
                      scratch_dir=tmp_path_factory.mktemp("debian-scratch")) as ctx:
        yield ctx


@pytest.fixture
def debian_ctx(debian_cache: Path, tmp_path: Path) -> Iterator[BuildContext]:
    """A fresh context on the shared cache, with its own scratch directory."""
    with BuildContext(build_registry(), cache_dir=debian_cache,
                      scratch_dir=tmp_path / "scratch") as ctx:
        yield ctx


@pytest.fixture(scope="session")
def debian_archive(session_ctx: BuildContext) -> DebianArchive:
    return DebianArchive(session_ctx, suite="trixie", arch="riscv64")


@pytest.fixture(scope="session")
def debian_default_image(debian_cache: Path, tmp_path_factory: pytest.TempPathFactory
                         ) -> tuple[Path, str]:
    """The image and what its build logged."""
    image = tmp_path_factory.mktemp("debian-default") / "debian.cpio.gz"
    built = subprocess.run(
        [str(Path(sys.executable).with_name("rvforge")), "build", "--provider", "debootstrap",
         "-o", str(image)],
        capture_output=True, text=True, timeout=1500, check=False,
        env={**os.environ, "RVFORGE_CACHE_DIR": str(debian_cache)})
    assert built.returncode == 0, built.stderr[-3000:]
    return image, built.stderr
