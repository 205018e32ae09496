"""Core's machine profiles: a plain rv64gc audit target with no launcher, and ``auto``.

rvforge-qemu contributes the real profiles (``qemu-virt`` and friends, with the ISA the
installed QEMU implements); the fallback keeps ``rvforge audit`` useful without it.
``auto`` is listed so ``--machine auto`` is a known name: it stands for "the smallest
bootable profile whose CPU has what the image needs", which :mod:`rvforge.auto_machine`
works out (a build: as a pipeline step once the tree is final, before any hook sees it).
"""

from __future__ import annotations

from collections.abc import Callable

from rvforge.hookspecs import hookimpl
from rvforge.machines import AUTO_MACHINE, FALLBACK_MACHINE, Machine


@hookimpl
def rvforge_register_machines(register: Callable[[Machine], None]) -> None:
    register(Machine(
        name=FALLBACK_MACHINE, launcher="", isa="rv64gc", memory_mb=2048, cpus=2,
        summary="any rv64gc (RVA20-class) CPU; an audit target only, it cannot boot",
    ))
    register(Machine(
        name=AUTO_MACHINE, launcher="", isa="", memory_mb=2048, cpus=2,
        summary="picked per image: the smallest bootable profile whose CPU has every "
                "extension its files need",
    ))
