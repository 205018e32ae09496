"""Hook specifications: the whole contract between rvforge and its plugins.

A plugin is a module (or object) whose functions carry :data:`rvforge.hookimpl` and whose
names match the hooks below. Installed distributions announce plugin modules in the
``rvforge`` entry-point group; rvforge's own components are plugin modules registered on the
same manager with the same markers.

Hooks are grouped by phase:

* **registration** (``rvforge_register_*``): called once when the registry is built. Each
  receives a ``register`` callback; call it once per component you contribute. Results of
  all implementations combine into one registry per family; two components of one family
  with the same name are an error naming both plugins.
* **build** (``rvforge_build_*``): called around each build; they observe and may adjust,
  never replace, the pipeline's steps. As pluggy does, the plugin registered last runs
  first (entry-point plugins before the built-ins), unless an implementation is marked
  ``@hookimpl(tryfirst=True)`` or ``trylast=True``; do not rely on any other order.
* **command line** (``rvforge_add_commands``, ``rvforge_prestart``): called once when the
  ``rvforge`` command line is built, and once before it is parsed.

Implementations may accept fewer arguments than a spec lists (pluggy passes only the names
they ask for); new arguments are only ever added, so existing plugins keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from rvforge.components import Auditor, KernelSource, Launcher, Overlay, Packer, Provider
    from rvforge.context import BuildContext
    from rvforge.machines import Machine
    from rvforge.prestart import Prestart
    from rvforge.spec import BuildReport, BuildSpec
    from rvforge.tree import Tree

PROJECT = "rvforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- registration ----------------------------------------------------------------------


@hookspec
def rvforge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Contribute base-rootfs providers (``--provider NAME``).

    Called once when the registry is built.

    :param register: call ``register(cls)`` for each :class:`~rvforge.Provider` subclass.
        ``cls.name`` must be unique among providers.

    Results: every implementation's registrations are merged into one provider registry.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_overlays(register: Callable[[type[Overlay]], None]) -> None:
    """Contribute overlays, which change the tree after the provider (``--overlay``,
    ``[[overlay]]`` in ``rvforge.toml``).

    Called once when the registry is built.

    :param register: call ``register(cls)`` for each :class:`~rvforge.Overlay` subclass.

    Results: merged into one overlay registry; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_auditors(register: Callable[[type[Auditor]], None]) -> None:
    """Contribute auditors, which read the finished tree and report findings.

    Called once when the registry is built. Every registered auditor runs on every build
    and ``rvforge audit`` unless the config disables it (``auditors = [...]``).

    :param register: call ``register(cls)`` for each :class:`~rvforge.Auditor` subclass.

    Results: merged into one auditor registry; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_packers(register: Callable[[type[Packer]], None]) -> None:
    """Contribute packers, which write the tree as an artifact.

    Called once when the registry is built. A packer is chosen by ``--packer NAME`` or by
    the ``-o`` name ending in one of its ``suffixes``; two packers claiming the same
    suffix are an error.

    :param register: call ``register(cls)`` for each :class:`~rvforge.Packer` subclass.

    Results: merged into one packer registry; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_launchers(register: Callable[[type[Launcher]], None]) -> None:
    """Contribute launchers, which boot artifacts (``rvforge boot`` / ``rvforge run``).

    Called once when the registry is built. A machine profile names its launcher.

    :param register: call ``register(cls)`` for each :class:`~rvforge.Launcher` subclass.

    Results: merged into one launcher registry; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_machines(register: Callable[[Machine], None]) -> None:
    """Contribute machine profiles (``--machine NAME``, ``rvforge machines``).

    Called once when the registry is built, before profiles from ``rvforge.toml``'s
    ``[machines.NAME]`` tables (which may not reuse a plugin's name).

    :param register: call ``register(machine)`` with a :class:`~rvforge.Machine` instance.

    Results: merged into one machine registry; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_register_kernels(register: Callable[[type[KernelSource]], None]) -> None:
    """Contribute kernel sources (``--kernel NAME``; a path is always accepted too).

    Called once when the registry is built.

    :param register: call ``register(cls)`` for each :class:`~rvforge.KernelSource` subclass.

    Results: merged into one kernel-source registry; names must be unique.

    .. versionadded:: 0.1
    """


# -- build -----------------------------------------------------------------------------


@hookspec
def rvforge_build_start(spec: BuildSpec, ctx: BuildContext) -> None:
    """Called once per build, after the spec is resolved and before the provider runs.

    :param spec: the resolved build: provider, overlays, packer, machine, output. Its
        ``machine`` is ``None`` for ``--machine auto``: the pipeline picks it once the tree
        is final, before :func:`rvforge_build_tree_ready`.
    :param ctx: the build's context.

    Results: return values are ignored; raise :class:`~rvforge.RvforgeError` to stop the
    build with a message.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_build_tree_ready(tree: Tree, spec: BuildSpec, ctx: BuildContext) -> None:
    """Called after the last overlay and before the auditors, with the final tree.

    :param tree: the tree that will be audited and packed; implementations may change it.
    :param spec: the resolved build, its machine resolved (for ``--machine auto``, the one
        picked for this tree).
    :param ctx: the build's context.

    Results: return values are ignored.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_build_finish(report: BuildReport, ctx: BuildContext) -> None:
    """Called once per successful build, after the artifact was renamed into place.

    :param report: entry counts, sizes, findings, artifact and timings.
    :param ctx: the build's context.

    Results: return values are ignored.

    .. versionadded:: 0.1
    """


# -- command line ----------------------------------------------------------------------


@hookspec
def rvforge_add_commands(app: typer.Typer) -> None:
    """Add commands or command groups to the ``rvforge`` command line (rvforge-qemu adds
    ``rvforge lava``).

    Called once when the command line is built, after rvforge's own commands. Import
    what the commands need inside the implementation or the commands, so that building
    the command line stays fast.

    :param app: the ``rvforge`` application; call ``app.command("NAME")(function)`` or
        ``app.add_typer(group, name="NAME")``.

    Results: return values are ignored. The commands added report an
    :class:`~rvforge.RvforgeError` they raise as rvforge's own do (one line, its exit
    code). A name rvforge or an earlier plugin already uses is not added (a warning names
    the plugin); an implementation that raises is skipped with a warning, and the other
    commands keep working.

    .. versionadded:: 0.1
    """


@hookspec
def rvforge_prestart(command: str, invocation: str, cache_dir: Path) -> Prestart | None:
    """Start, before the command line is parsed, work the command will probably ask for
    (rvforge-qemu starts restoring the guest that the same ``rvforge run`` command line
    restored last time), so that it runs while rvforge is still starting.

    Called once by the ``rvforge`` command line, for every command but ``--version``,
    ``--help`` and a kept guest's ``exec``. Be quick, start work in the background, and
    never fail the command: an implementation that raises an
    :class:`~rvforge.RvforgeError` or ``OSError`` makes rvforge start nothing early.

    :param command: the command's name (``run``).
    :param invocation: names this command line (its words up to ``--``, the working
        directory and the environment that can change what is launched:
        :func:`rvforge.prestart.invocation_digest`); the same words in the same place give
        the same name, so a plugin can remember under it what the command launched.
    :param cache_dir: rvforge's cache (:func:`rvforge.default_cache_dir`).

    Results: a :class:`~rvforge.Prestart` handle, or ``None``. The command's
    context holds the handles (:attr:`~rvforge.BuildContext.prestarted`); a component that
    finds the guess right takes its handle (:meth:`~rvforge.BuildContext.take_prestarted`)
    and checks that what was started is exactly what the command asks for; every handle
    left is closed when the command ends.

    .. versionadded:: 0.2
    """
