"""Registries of named components, built from the ``rvforge_register_*`` hooks.

:class:`Registry` is the typed facade over ``pm.hook`` (pluggy does not check
implementations against specs): it calls each registration hook implementation with a
``register`` callback, records which plugin contributed each component, and refuses two
components of one family with the same name, naming both plugins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rvforge.components import (
    Auditor,
    KernelSource,
    Launcher,
    Overlay,
    Packer,
    Provider,
)
from rvforge.errors import DuplicateComponentError, PluginError, UnknownComponentError, UsageError
from rvforge.machines import DEFAULT_MACHINE, FALLBACK_MACHINE, Machine
from rvforge.plugins import PluginManager

if TYPE_CHECKING:
    from pathlib import Path

    from rvforge.context import BuildContext

T = TypeVar("T")

ISA_TARGET = "isa-target"
"""The machine name of an audit target given with ``--isa`` instead of ``--machine``."""


@dataclass(frozen=True)
class Registered(Generic[T]):
    """A component and the plugin that registered it."""

    name: str
    component: T
    plugin: str


class Family(Generic[T]):
    """The components of one family, by name."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, Registered[T]] = {}

    def add(self, name: str, component: T, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.family} without a name")
        if name in self._items:
            first = self._items[name].plugin
            raise DuplicateComponentError(
                f"{self.family} {name!r} is registered by both plugin {first!r} and plugin "
                f"{plugin!r}; uninstall or disable one (RVFORGE_DISABLE_PLUGINS)"
            )
        self._items[name] = Registered(name, component, plugin)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def get(self, name: str) -> T:
        """The component called ``name``; an unknown name lists the known ones."""
        try:
            return self._items[name].component
        except KeyError:
            raise UnknownComponentError(self.family, name, list(self._items)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Registered[T]]:
        return iter(sorted(self._items.values(), key=lambda r: r.name))

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return sorted(self._items)

    def plugin_of(self, name: str) -> str:
        return self._items[name].plugin

    def drop_plugin(self, plugin: str) -> None:
        """Forget every component ``plugin`` registered (it failed and is skipped)."""
        self._items = {n: r for n, r in self._items.items() if r.plugin != plugin}


class Registry:
    """Every component the loaded plugins contribute, one :class:`Family` per kind."""

    def __init__(self, pm: PluginManager) -> None:
        self.pm = pm
        self.providers: Family[type[Provider[Any]]] = Family("provider")
        self.overlays: Family[type[Overlay[Any]]] = Family("overlay")
        self.auditors: Family[type[Auditor]] = Family("auditor")
        self.packers: Family[type[Packer]] = Family("packer")
        self.launchers: Family[type[Launcher[Any]]] = Family("launcher")
        self.kernels: Family[type[KernelSource[Any]]] = Family("kernel source")
        self.machines: Family[Machine] = Family("machine")
        self._collect("rvforge_register_providers", self.providers, Provider)
        self._collect("rvforge_register_overlays", self.overlays, Overlay)
        self._collect("rvforge_register_auditors", self.auditors, Auditor)
        self._collect("rvforge_register_packers", self.packers, Packer)
        self._collect("rvforge_register_launchers", self.launchers, Launcher)
        self._collect("rvforge_register_kernels", self.kernels, KernelSource)
        self._collect("rvforge_register_machines", self.machines, Machine)
        self._check_packer_suffixes()

    @property
    def families(self) -> dict[str, Family[Any]]:
        return {
            "providers": self.providers, "overlays": self.overlays, "auditors": self.auditors,
            "packers": self.packers, "launchers": self.launchers, "kernels": self.kernels,
            "machines": self.machines,
        }

    def components_of(self, plugin: str) -> dict[str, list[str]]:
        """Component names plugin ``plugin`` contributes, by family."""
        result: dict[str, list[str]] = {}
        for family_name, family in self.families.items():
            names = [r.name for r in family if r.plugin == plugin]
            if names:
                result[family_name] = names
        return result

    def add_machine(self, machine: Machine, plugin: str = "rvforge.toml",
                    base: Path | None = None) -> None:
        """Add a user-defined machine profile (from ``rvforge.toml``). Its relative paths
        are made relative to ``base``, the config file's directory, as the file's other
        paths are (:meth:`~rvforge.Launcher.profile_settings` of its launcher)."""
        if base is not None and machine.launcher in self.launchers:
            launcher = self.launchers.get(machine.launcher)
            machine = dataclasses.replace(
                machine, options=launcher.profile_settings(machine.options, base))
        self.machines.add(machine.name, machine, plugin)

    def default_machine(self) -> str:
        return DEFAULT_MACHINE if DEFAULT_MACHINE in self.machines else FALLBACK_MACHINE

    def resolve_machine(self, name: str | None, isa: str | None, ctx: BuildContext
                        ) -> Machine:
        """The machine profile ``name`` (default: ``qemu-virt``, else core's rv64gc
        fallback) with the ISA its launcher works out; ``isa`` (a string or profile name
        such as ``rv64gcv`` or ``rva23u64``) replaces the CPU, keeping the profile's
        memory for the size audit, under the name :data:`ISA_TARGET`."""
        machine = self.machines.get(name or self.default_machine())
        if isa:
            from rvforge.riscv.isa import parse_target

            return dataclasses.replace(machine, name=ISA_TARGET, launcher="",
                                       isa=str(parse_target(isa)),
                                       summary=f"the CPU given with --isa {isa}")
        if machine.launcher and machine.launcher in self.launchers:
            launcher = self.launchers.get(machine.launcher)()
            machine = dataclasses.replace(machine, isa=launcher.machine_isa(machine, ctx))
        return machine

    def packer_for(self, output_name: str) -> tuple[type[Packer], str]:
        """The packer whose suffix ``output_name`` ends with (longest match) and the
        format (the suffix without its leading dot)."""
        best: tuple[int, type[Packer], str] | None = None
        for reg in self.packers:
            for suffix in reg.component.suffixes:
                if output_name.endswith(suffix) and (best is None or len(suffix) > best[0]):
                    best = (len(suffix), reg.component, suffix.lstrip("."))
        if best is None:
            known = sorted(s for r in self.packers for s in r.component.suffixes)
            raise UsageError(
                f"no packer writes {output_name!r}: name the output with one of "
                f"{', '.join(known)} or pass --packer NAME"
            )
        return best[1], best[2]

    def _collect(self, hook_name: str, family: Family[Any], base: type) -> None:
        """Call ``hook_name`` once per implementing plugin (registration order: built-ins
        first, so a duplicate names the built-in first), through pluggy's hook caller so
        tracing (``RVFORGE_TRACE_PLUGINS``) and hook-call monitors see every call; each
        call's ``register`` knows the plugin, and one plugin's failure skips only it."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name
            if not self.pm.has_plugin(plugin):  # skipped by an earlier family
                continue

            def register(component: Any, _plugin: str = plugin) -> None:
                self._check_component(component, base, family.family, _plugin)
                family.add(component.name, component, _plugin)

            try:
                self.pm.plugin_hook_caller(hook_name, plugin)(register=register)
            except (DuplicateComponentError, UsageError):
                raise
            except Exception as error:
                self._skip(plugin, hook_name, error)

    def _skip(self, plugin: str, hook_name: str, error: Exception) -> None:
        """Drop a plugin whose registration failed: its components from every family, and
        the plugin from the manager, which reports it (:meth:`PluginManager.fail`)."""
        for family in self.families.values():
            family.drop_plugin(plugin)
        self.pm.fail(plugin, f"{type(error).__name__}: {error}", during=hook_name,
                     cause=error)

    @staticmethod
    def _check_component(component: Any, base: type, family: str, plugin: str) -> None:
        if base is Machine:
            if not isinstance(component, Machine):
                raise PluginError(f"plugin {plugin!r} registered {component!r} as a machine; "
                                  "pass a rvforge.Machine instance")
            return
        if not (isinstance(component, type) and issubclass(component, base)):
            raise PluginError(f"plugin {plugin!r} registered {component!r} as a {family}; "
                              f"pass a subclass of rvforge.{base.__name__}")
        if not getattr(component, "name", None):
            raise PluginError(f"plugin {plugin!r}: {family} class {component.__name__} has "
                              "no name")
        missing = sorted(getattr(component, "__abstractmethods__", ()))
        if missing:
            raise PluginError(f"plugin {plugin!r}: {family} class {component.__name__} does "
                              f"not implement {', '.join(missing)} (abstract in "
                              f"rvforge.{base.__name__})")

    def _check_packer_suffixes(self) -> None:
        owners: dict[str, str] = {}
        for reg in self.packers:
            for suffix in reg.component.suffixes:
                if suffix in owners:
                    raise DuplicateComponentError(
                        f"packers {owners[suffix]!r} and {reg.name!r} both claim the output "
                        f"suffix {suffix!r}"
                    )
                owners[suffix] = reg.name


def build_registry(*, load_entrypoints: bool = True) -> Registry:
    """A fresh plugin manager and the registry built from it."""
    from rvforge.plugins import get_plugin_manager

    return Registry(get_plugin_manager(load_entrypoints=load_entrypoints))
