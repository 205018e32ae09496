"""Entry point of rvforge-qemu (group ``rvforge``): registers its machine profiles, its
two launchers, the ``rvforge lava`` commands, and the early restore of ``rvforge run``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rvforge import Launcher, Machine, Prestart, hookimpl

from rvforge_qemu.profiles import builtin_profiles
from rvforge_qemu.user import QemuUser
from rvforge_qemu.virt import QemuVirt

if TYPE_CHECKING:
    from pathlib import Path

    import typer



@hookimpl
def rvforge_register_machines(register: Callable[[Machine], None]) -> None:
    for machine in builtin_profiles():
        register(machine)


@hookimpl
def rvforge_register_launchers(register: Callable[[type[Launcher]], None]) -> None:
    register(QemuVirt)
    register(QemuUser)


@hookimpl
def rvforge_prestart(command: str, invocation: str, cache_dir: Path) -> Prestart | None:
    """``rvforge run``: restore the guest the same command line restored last time
    (:mod:`rvforge_qemu.prestart`)."""
    if command != "run":
        return None
    from rvforge_qemu.prestart import prestart_run

    return prestart_run(invocation, cache_dir)


@hookimpl
def rvforge_add_commands(app: typer.Typer) -> None:
    from rvforge_qemu.lava.cli import lava_app  # the command group's modules: only now

    app.add_typer(lava_app, name="lava")
