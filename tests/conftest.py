"""Fixtures of the cross-package tests that read real Debian packages and toolchains."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rvforge.context import BuildContext
from rvforge.registry import Registry, build_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The built-in components only (no installed plugins)."""
    return build_registry(load_entrypoints=False)


@pytest.fixture(scope="session")
def ctx(registry: Registry, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[BuildContext]:
    """A context on the user's default cache: Debian packages, toolchains and wheels are
    fetched once and reused by later runs."""
    with BuildContext(registry, scratch_dir=tmp_path_factory.mktemp("scratch")) as c:
        yield c
