"""Entry point of rvforge-qemu (group ``rvforge``): registers its machine profiles and its
two launchers."""

from __future__ import annotations

from collections.abc import Callable

from rvforge import Launcher, Machine, hookimpl

from rvforge_qemu.profiles import builtin_profiles
from rvforge_qemu.user import QemuUser
from rvforge_qemu.virt import QemuVirt


@hookimpl
def rvforge_register_machines(register: Callable[[Machine], None]) -> None:
    for machine in builtin_profiles():
        register(machine)


@hookimpl
def rvforge_register_launchers(register: Callable[[type[Launcher]], None]) -> None:
    register(QemuVirt)
    register(QemuUser)
