"""Fixtures of rvforge-qemu's own tests: a build context on the real plugin registry with
a private cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rvforge import BuildContext
from rvforge.registry import build_registry


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[BuildContext]:
    with BuildContext(build_registry(), cache_dir=tmp_path / "cache",
                      scratch_dir=tmp_path / "scratch") as context:
        yield context
