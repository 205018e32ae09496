"""pytest helpers for plugin authors (loaded automatically through the ``pytest11`` entry
point when rvforge-core is installed).

Fixtures:

``rvforge_plugin_manager``
    A fresh plugin manager with rvforge's built-in plugins only (no entry points), so a
    test sees exactly the plugins it registers.
``rvforge_registry``
    A function returning the :class:`~rvforge.registry.Registry` built from that manager
    as it is now (call it after registering your plugin).
``rvforge_context``
    A :class:`~rvforge.BuildContext` on that registry with a private cache and scratch
    directory.

Context manager:

:func:`registered_plugin`
    ``with registered_plugin(pm, MyPlugin()): ...`` registers a temporary plugin and
    unregisters it afterwards.

Example::

    from rvforge.testing import registered_plugin

    def test_my_provider(rvforge_plugin_manager, rvforge_registry):
        with registered_plugin(rvforge_plugin_manager, my_plugin_module):
            assert "mine" in rvforge_registry().providers
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rvforge.context import BuildContext
from rvforge.plugins import PluginInfo, PluginManager, get_plugin_manager
from rvforge.registry import Registry


@contextmanager
def registered_plugin(pm: PluginManager, plugin: object, name: str | None = None
                      ) -> Iterator[object]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) on ``pm`` for
    the duration of the ``with`` block."""
    name = name or getattr(plugin, "__name__", None) or f"test-plugin-{id(plugin)}"
    pm.register_plugin(plugin, PluginInfo(name, name, None, None))
    try:
        yield plugin
    finally:
        pm.unregister(plugin)
        pm.infos.pop(name, None)


@pytest.fixture
def rvforge_plugin_manager() -> PluginManager:
    """A fresh manager holding only rvforge's built-in plugins."""
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def rvforge_registry(rvforge_plugin_manager: PluginManager) -> Callable[[], Registry]:
    """Build the registry from ``rvforge_plugin_manager`` as it is when called."""
    return lambda: Registry(rvforge_plugin_manager)


@pytest.fixture
def rvforge_context(rvforge_plugin_manager: PluginManager, tmp_path: Path
                    ) -> Iterator[BuildContext]:
    """A build context with a private cache and scratch directory."""
    with BuildContext(Registry(rvforge_plugin_manager), cache_dir=tmp_path / "cache",
                      scratch_dir=tmp_path / "scratch") as ctx:
        yield ctx
