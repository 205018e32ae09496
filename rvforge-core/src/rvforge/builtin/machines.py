"""Core's fallback machine profile: a plain rv64gc audit target with no launcher.

rvforge-qemu contributes the real profiles (``qemu-virt`` and friends, with the ISA the
installed QEMU implements); this one keeps ``rvforge audit`` useful without it.
"""

from __future__ import annotations

from collections.abc import Callable

from rvforge.hookspecs import hookimpl
from rvforge.machines import FALLBACK_MACHINE, Machine


@hookimpl
def rvforge_register_machines(register: Callable[[Machine], None]) -> None:
    register(Machine(
        name=FALLBACK_MACHINE, launcher="", isa="rv64gc", memory_mb=2048, cpus=2,
        summary="any rv64gc (RVA20-class) CPU; an audit target only, it cannot boot",
    ))
