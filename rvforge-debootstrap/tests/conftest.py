"""Fixtures of rvforge-debootstrap's tests.

``debian_cache``: the tests' own cache (the root conftest's, ``build/test-cache/rvforge``),
so each ``.deb`` and index is fetched once (``make test-cache`` fetches them before the
tests). ``debian_archive``: trixie riscv64 on the host's
mirror, index parsed once per session. ``debian_default_image``: the image of the README's
one-liner (``rvforge build --provider debootstrap -o debian.cpio.gz``), configured at build
time, built once per session (a VM configuration takes 2-5 minutes here); as root with a
riscv64 binfmt_misc handler (CI) that build is ``--configure binfmt``'s, which
test_configure_binfmt.py checks on this image rather than building it twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rvforge import BuildContext
from rvforge.context import default_cache_dir
from rvforge.registry import Registry

from .debian_builds import DebianBuild, build_debian
from rvforge_debootstrap.archive import DebianArchive


@pytest.fixture(scope="session")
def debian_cache() -> Path:
    return default_cache_dir()


@pytest.fixture(scope="session")
def debian_archive(registry: Registry, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[DebianArchive]:
    """trixie riscv64, its index read once per session (its context lives as long)."""
    with BuildContext(registry, scratch_dir=tmp_path_factory.mktemp("debian-scratch")
                      ) as session:
        yield DebianArchive(session, suite="trixie", arch="riscv64")


@pytest.fixture(scope="session")
def debian_default_image(debian_cache: Path, tmp_path_factory: pytest.TempPathFactory
                         ) -> DebianBuild:
    """The README's one-liner's image (``--configure auto``)."""
    return build_debian(tmp_path_factory.mktemp("debian-default"), "debian.cpio.gz",
                        cache=debian_cache)
