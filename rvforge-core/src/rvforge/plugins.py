"""The plugin manager: built-in plugins, entry-point plugins, and what went wrong loading them.

:func:`get_plugin_manager` builds a fresh manager every time (tests get a clean one; there
is no module-level manager). Environment variables, as in llm and pytest:

``RVFORGE_LOAD_PLUGINS``
    Comma-separated allow-list of plugins (entry-point or distribution names) to load; set
    but empty loads no external plugin at all. Built-ins always load.
``RVFORGE_DISABLE_PLUGINS``
    Comma-separated plugins not to load (entry-point or distribution names).
``RVFORGE_STRICT_PLUGINS=1``
    A plugin that fails to load is fatal instead of reported and skipped.
``RVFORGE_TRACE_PLUGINS=1``
    Log every hook call.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from rvforge import hookspecs
from rvforge.errors import PluginError

ENTRY_POINT_GROUP = "rvforge"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "rvforge.builtin.local_provider",
    "rvforge.builtin.overlays",
    "rvforge.builtin.init_overlay",
    "rvforge.builtin.packers",
    "rvforge.builtin.auditors",
    "rvforge.builtin.machines",
)
"""rvforge-core's own components: plugin modules like any other (pytest's default_plugins)."""


@dataclass(frozen=True)
class PluginInfo:
    """What ``rvforge plugins`` shows about one plugin.

    :param name: entry-point name, or the module name of a built-in.
    :param module: the module registered on the manager.
    :param distribution: the installed distribution providing it (``None`` if unknown).
    :param version: that distribution's version.
    :param builtin: part of rvforge-core.
    :param error: why loading failed, for a plugin that was skipped.
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool = False
    error: str | None = None


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and which failed."""

    infos: dict[str, PluginInfo]
    failures: list[PluginInfo]

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos = {}
        self.failures = []

    def register_plugin(self, plugin: ModuleType | object, info: PluginInfo) -> None:
        """Register ``plugin`` under ``info.name`` and remember its provenance."""
        self.register(plugin, name=info.name)
        self.infos[info.name] = info

    def info(self, name: str) -> PluginInfo:
        return self.infos.get(name) or PluginInfo(name, name, None, None)

    def hooks_of(self, name: str) -> list[str]:
        """Names of the hooks plugin ``name`` implements."""
        plugin = self.get_plugin(name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.get_hookcallers(plugin) or [])


def get_plugin_manager(*, load_entrypoints: bool = True, strict: bool | None = None
                       ) -> PluginManager:
    """Build a manager with the built-in plugins and (optionally) the installed ones.

    :param load_entrypoints: load plugins from the ``rvforge`` entry-point group.
    :param strict: make a failing plugin fatal (default: ``$RVFORGE_STRICT_PLUGINS``).
    """
    if strict is None:
        strict = env_flag("RVFORGE_STRICT_PLUGINS")
    pm = PluginManager()
    version = _version("rvforge-core")
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register_plugin(module, PluginInfo(module_name, module_name, "rvforge-core",
                                              version, builtin=True))
    if load_entrypoints:
        _load_entrypoints(pm, strict)
    pm.check_pending()
    if env_flag("RVFORGE_TRACE_PLUGINS"):
        log = _logger()
        pm.trace.root.setwriter(lambda message: log.debug("hook", trace=message.rstrip()))
        pm.enable_tracing()
    return pm


def selected_entry_points() -> list[tuple[importlib.metadata.EntryPoint, PluginInfo]]:
    """The ``rvforge`` entry points the allow- and deny-lists let load, by name, each with
    what its metadata says (nothing is imported)."""
    allow = _env_list("RVFORGE_LOAD_PLUGINS")
    deny = _env_list("RVFORGE_DISABLE_PLUGINS") or set()
    selected = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                     key=lambda ep: ep.name):
        dist = ep.dist.name if ep.dist else None
        version = ep.dist.version if ep.dist else None
        names = {ep.name, dist or ep.name}
        if (allow is not None and not names & allow) or names & deny:
            continue
        selected.append((ep, PluginInfo(ep.name, ep.value, dist, version)))
    return selected


def _load_entrypoints(pm: PluginManager, strict: bool) -> None:
    for ep, info in selected_entry_points():
        if pm.has_plugin(ep.name):
            continue
        dist, version = info.distribution, info.version
        try:
            plugin = ep.load()
            pm.register_plugin(plugin, info)
            check_hooks(pm, ep.name)
        except Exception as error:
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
                pm.infos.pop(ep.name, None)
            message = f"{type(error).__name__}: {error}"
            failure = PluginInfo(ep.name, ep.value, dist, version, error=message)
            if strict:
                raise PluginError(
                    f"plugin {ep.name!r} ({dist} {version}) failed to load: {message} "
                    "(unset RVFORGE_STRICT_PLUGINS to skip it)"
                ) from error
            pm.failures.append(failure)
            _logger().warning("plugin failed to load; skipping it", plugin=ep.name,
                              distribution=dist, version=version, error=message)


def check_hooks(pm: PluginManager, name: str) -> None:
    """Refuse plugin ``name`` if it implements a hook rvforge does not define (a misspelt
    ``rvforge_register_provider``), naming the closest real hook."""
    plugin = pm.get_plugin(name)
    known = [hook for hook in vars(pm.hook) if not hook.startswith("_")
             and getattr(pm.hook, hook).has_spec()]
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls()
                                    if impl.plugin is plugin):
            continue
        close = difflib.get_close_matches(caller.name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PluginError(f"implements {caller.name!r}, which is not an rvforge hook{hint}")


def _logger() -> Any:
    import structlog  # only when there is something to say: startup stays light

    return structlog.get_logger("rvforge.plugins")


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
