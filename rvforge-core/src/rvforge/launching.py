"""One path from option values to a started guest: the CLI's ``boot``/``run``, the pytest
plugin and API callers all go through :func:`prepare_launch`.

It picks the launcher (``--launcher``, else the machine profile's), builds the launcher's
``Options`` from the raw values (a value the launcher does not declare is a
:class:`~rvforge.UsageError` naming it and the launcher; ``timeout``, ``memory`` and
``cpus`` are checked by :func:`~rvforge.options.launch_limits`), lays the settings those
options stand for over the context's, resolves the machine (``auto``: the smallest profile
whose CPU has what the image needs) and returns a :class:`Launch` ready to boot, run or
hold a session.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvforge.config import Config, load_config
from rvforge.context import BuildContext
from rvforge.errors import UsageError
from rvforge.options import (
    OptionSpec,
    build_options,
    declared_options,
    flag_name,
    launch_limits,
)

if TYPE_CHECKING:
    from rvforge.artifacts import Artifact, BootResult, RunResult
    from rvforge.components import Launcher, LaunchSession
    from rvforge.machines import Machine
    from rvforge.registry import Registry


@contextmanager
def configured_context(config: Path | None = None, *, offline: bool = False,
                       deep: bool = False, registry: Registry | None = None
                       ) -> Iterator[tuple[Config, BuildContext]]:
    """What a command (or a guest's keeper) starts with: the config (``config``, else
    ``./rvforge.toml``), the registry (``registry``, else a new one) with the config's
    machine profiles added, and a context for the work."""
    from rvforge.registry import build_registry

    settings = load_config(config)
    if registry is None:
        registry = build_registry()
    for profile in settings.machines:
        registry.add_machine(profile, base=settings.base)
    with BuildContext(registry, offline=offline, deep=deep,
                      settings=dict(settings.plugins)) as ctx:
        yield settings, ctx


@dataclass
class Launch:
    """A launcher with its options, the resolved machine and the artifact: ready to call.

    :param launcher: the launcher instance.
    :param machine: the machine profile, its ISA resolved (``auto`` already picked).
    :param artifact: what boots.
    :param options: the launcher's ``Options``, built from the values given.
    """

    launcher: Launcher[Any]
    machine: Machine
    artifact: Artifact
    options: Any

    def boot(self, ctx: BuildContext) -> BootResult:
        return self.launcher.boot(self.artifact, self.machine, self.options, ctx)

    def run(self, argv: list[str], ctx: BuildContext) -> RunResult:
        return self.launcher.run(self.artifact, self.machine, list(argv), self.options, ctx)

    def session(self, ctx: BuildContext) -> AbstractContextManager[LaunchSession]:
        return self.launcher.session(self.artifact, self.machine, self.options, ctx)


def prepare_launch(image: Path | str, ctx: BuildContext, *, machine: str | None = None,
                   launcher: str | None = None, values: Mapping[str, Any] | None = None,
                   command: str = "run", argv: Sequence[str] = ()) -> Launch:
    """Everything between option values and a started guest (see the module docstring).

    :param image: the artifact file (initramfs or ext4 image).
    :param machine: a machine profile name, ``auto``, or ``None`` for the default.
    :param launcher: a launcher overriding the profile's (``qemu-user``).
    :param values: raw option values by field name (``share``, ``gdb_port``...); ``None``
        means not given, so the launcher's default applies.
    :param command: ``boot``, ``run`` or ``session``; ``run`` sets the ``stream`` option of
        launchers that declare it.
    :param argv: the command ``run`` will run: with ``auto``, the shared files it names
        count (:mod:`rvforge.shared_files`).
    :raises UsageError: an unknown machine or launcher, a value the launcher does not
        take or a bad one, a machine without a launcher.
    """
    from rvforge.artifacts import Artifact
    from rvforge.auto_machine import machine_for_image
    from rvforge.machines import AUTO_MACHINE
    from rvforge.shared_files import shared_needs

    registry = ctx.registry
    image = Path(image)
    given = {k: v for k, v in (values or {}).items() if v is not None}
    name = launcher or _profile_launcher(registry, machine)
    chosen, options = _launcher_with_options(registry, name, given, command, ctx)
    target = registry.resolve_machine(machine, None, ctx)
    if target.name == AUTO_MACHINE:
        shares = chosen.shared_directories(registry.machines.get(registry.default_machine()),
                                           options)
        target = machine_for_image(image, registry, ctx,
                                   also=shared_needs(shares, argv, ctx))
        if not launcher and target.launcher and target.launcher != name:
            chosen, options = _launcher_with_options(registry, target.launcher, given,
                                                     command, ctx)
    return Launch(chosen, target, Artifact.of_image(image), options)


def launcher_options(ctx: BuildContext, launcher: str, values: Mapping[str, Any],
                     command: str) -> Any:
    """The ``Options`` of ``launcher`` from raw ``values`` (flags of ``command`` its
    declaration derives: :func:`rvforge.launcher_flags_command`), checked and built as
    :func:`prepare_launch` builds them, with the settings they stand for laid over
    ``ctx.settings`` (``--qemu PATH``). For commands that take a launcher's options without
    starting a guest (``rvforge lava job``).

    :raises UsageError: a value the launcher does not declare, or a bad one.
    """
    given = {k: v for k, v in values.items() if v is not None}
    return _launcher_with_options(ctx.registry, launcher, given, command, ctx)[1]


def launcher_flags(registry: Registry, command: str) -> list[OptionSpec]:
    """The options the installed launchers declare as flags of ``command`` (each name
    once, the first launcher's declaration winning), in registration order."""
    seen: dict[str, OptionSpec] = {}
    for reg in registry.launchers:
        for spec in declared_options(reg.component.Options):
            if command in spec.commands:
                seen.setdefault(spec.name, spec)
    return list(seen.values())


def apply_launcher_settings(ctx: BuildContext, values: Mapping[str, Any],
                            command: str) -> None:
    """Lay over ``ctx.settings`` what ``values`` (flags of ``command`` that launchers
    declare, such as ``build --qemu``) stand for, for each launcher declaring them."""
    given = {k: v for k, v in values.items() if v is not None}
    for reg in ctx.registry.launchers:
        declared = {s.name for s in declared_options(reg.component.Options)
                    if command in s.commands}
        mine = {k: v for k, v in given.items() if k in declared}
        if mine:
            options = build_options(reg.component.Options, mine,
                                    owner=f"launcher {reg.name!r}")
            _lay_over(ctx, reg.component().context_settings(options))


def _lay_over(ctx: BuildContext, settings: Mapping[str, Mapping[str, object]]) -> None:
    for plugin, table in settings.items():
        current = ctx.settings.get(plugin)
        ctx.settings[plugin] = {**(current if isinstance(current, Mapping) else {}), **table}


def _profile_launcher(registry: Registry, machine: str | None) -> str:
    """The launcher the profile ``machine`` names (``auto``: the default profile's)."""
    from rvforge.machines import AUTO_MACHINE

    profile = registry.machines.get(machine or registry.default_machine())
    if profile.name == AUTO_MACHINE:
        profile = registry.machines.get(registry.default_machine())
    if not profile.launcher:
        if profile.summary:  # an audit-only profile (a board no QEMU models) says why
            raise UsageError(f"machine {profile.name!r} cannot boot: {profile.summary}; "
                             "pick another --machine ('rvforge machines' lists them)")
        raise UsageError(f"machine {profile.name!r} has no launcher; install rvforge-qemu, "
                         "pick another --machine or pass --launcher")
    return profile.launcher


def _launcher_with_options(registry: Registry, name: str, given: Mapping[str, Any],
                           command: str, ctx: BuildContext) -> tuple[Launcher[Any], Any]:
    """The launcher ``name`` and its options from ``given``; the settings they stand for
    go into ``ctx.settings``."""
    cls = registry.launchers.get(name)
    specs = declared_options(cls.Options)
    declared = {spec.name for spec in specs}
    for key in given:
        if key.replace("-", "_") not in declared:
            shown = "run" if command == "session" else command
            takes = ", ".join(s.flag for s in specs if shown in s.commands) or "no options"
            raise UsageError(f"launcher {name!r} does not take {flag_name(key)} "
                             f"(it takes: {takes})")
    values = launch_limits(given)
    if command == "run" and "stream" in declared:
        values.setdefault("stream", True)
    options = build_options(cls.Options, values, owner=f"launcher {name!r}")
    instance = cls()
    _lay_over(ctx, instance.context_settings(options))
    return instance, options
