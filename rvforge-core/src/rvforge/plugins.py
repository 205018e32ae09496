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

import dataclasses
import difflib
import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy
from pluggy import HookCaller

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

    def register_plugin(self, plugin: ModuleType | object, info: PluginInfo) -> object:
        """Register ``plugin`` under ``info.name`` and remember its provenance; returns the
        object registered (an unhashable namespace, such as a ``SimpleNamespace``, is
        registered as a hashable copy of its attributes: pluggy's per-plugin hook callers
        keep plugins in sets)."""
        if type(plugin).__hash__ is None:
            plugin = _HashableNamespace(plugin)
        self.register(plugin, name=info.name)
        self.infos[info.name] = info
        return plugin

    def plugin_hook_caller(self, hook_name: str, plugin: str) -> HookCaller:
        """A caller of ``hook_name`` that calls only plugin ``plugin``'s implementation,
        through pluggy's hook execution (tracing and hook-call monitors see the call)."""
        others = [p for name, p in self.list_name_plugin() if name != plugin]
        return self.subset_hook_caller(hook_name, remove_plugins=others)

    def fail(self, name: str, error: str, *, during: str | None = None,
             cause: BaseException | None = None, strict: bool | None = None,
             info: PluginInfo | None = None) -> None:
        """Record that plugin ``name`` failed (to load, or in hook ``during``), unregister
        it and log a warning; with ``strict`` (default: ``$RVFORGE_STRICT_PLUGINS``) raise
        :class:`~rvforge.errors.PluginError` instead. ``info`` says where it came from
        when it never got registered."""
        info = info or self.info(name)
        where = f"failed in {during}" if during else "failed to load"
        if env_flag("RVFORGE_STRICT_PLUGINS") if strict is None else strict:
            raise PluginError(
                f"plugin {name!r} ({info.distribution} {info.version}) {where}: {error} "
                "(unset RVFORGE_STRICT_PLUGINS to skip it)"
            ) from cause
        self.forget(name)
        self.failures.append(dataclasses.replace(
            info, error=f"{during}: {error}" if during else error))
        if during:
            _logger().warning("plugin hook failed; skipping it", plugin=name, hook=during,
                              error=error)
        else:
            _logger().warning("plugin failed to load; skipping it", plugin=name,
                              distribution=info.distribution, version=info.version,
                              error=error)

    def forget(self, name: str) -> None:
        """Unregister plugin ``name`` (if it still is) and drop what is known of it."""
        if self.has_plugin(name):
            self.unregister(name=name)
        self.infos.pop(name, None)

    def info(self, name: str) -> PluginInfo:
        return self.infos.get(name) or PluginInfo(name, name, None, None)

    def hooks_of(self, name: str) -> list[str]:
        """Names of the hooks plugin ``name`` implements."""
        plugin = self.get_plugin(name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.get_hookcallers(plugin) or [])


class _HashableNamespace:
    """The attributes of an unhashable plugin object, hashable by identity."""

    def __init__(self, namespace: object) -> None:
        self.__dict__.update(vars(namespace))


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
        try:
            plugin = ep.load()
            pm.register_plugin(plugin, info)
            check_hooks(pm, ep.name)
        except Exception as error:
            pm.fail(ep.name, f"{type(error).__name__}: {error}", cause=error, strict=strict,
                    info=info)


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
    from rvforge.log import get_logger

    return get_logger("rvforge.plugins")


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
