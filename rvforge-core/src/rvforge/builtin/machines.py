"""Core's machine profiles: a plain rv64gc audit target with no launcher, and ``auto``.

rvforge-qemu contributes the real profiles (``qemu-virt`` and friends, with the ISA the
installed QEMU implements); the fallback keeps ``rvforge audit`` useful without it.
``auto`` stands for "the smallest bootable profile whose CPU has what the image needs": a
build picks it once the tree is ready (:func:`rvforge_build_tree_ready`), before the audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rvforge.hookspecs import hookimpl
from rvforge.machines import AUTO_MACHINE, FALLBACK_MACHINE, Machine, machine_for_tree

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.spec import BuildSpec
    from rvforge.tree import Tree


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


@hookimpl
def rvforge_build_tree_ready(tree: Tree, spec: BuildSpec, ctx: BuildContext) -> None:
    if spec.machine.name == AUTO_MACHINE and spec.audit != "off":
        spec.machine = machine_for_tree(tree, ctx.registry, ctx)
