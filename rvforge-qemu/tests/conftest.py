"""Fixtures of rvforge-qemu's own tests: the root conftest's ``ctx`` (the real plugin
registry) on a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"
