"""``--machine auto``: the smallest bootable machine profile whose CPU has what an image
needs (:func:`rvforge.riscv.needs.tree_needs`). A build picks it as a pipeline step once the
tree is final (:func:`rvforge.pipeline.build`); ``boot``/``run``/``audit`` per image."""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

from rvforge.artifacts import Artifact
from rvforge.errors import RvforgeError, UsageError
from rvforge.riscv.isa import Needs, parse_target, top_level
from rvforge.riscv.needs import tree_needs

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.machines import Machine
    from rvforge.registry import Registry
    from rvforge.riscv.isa import Isa
    from rvforge.tree import Tree

__all__ = ["machine_for_image", "machine_for_tree", "pick_machine"]


def pick_machine(needs: Mapping[str, Needs], registry: Registry, ctx: BuildContext
                 ) -> Machine:
    """The bootable profile with the fewest extensions whose CPU meets every one of
    ``needs`` (path → what that file needs, :func:`~rvforge.riscv.needs.tree_needs`),
    its ISA resolved.

    :raises UsageError: (exit 2) when none has them, naming the missing extensions, the
        files that need them and the profiles this host cannot resolve (their reasons name
        the QEMU that has them).
    """
    total = reduce(lambda a, b: a | b, needs.values(), Needs(64))
    fits: list[tuple[int, str, Machine]] = []
    unavailable: list[str] = []
    closest: tuple[list[str], Isa] | None = None
    for reg in registry.machines:
        if (reg.component.launcher not in registry.launchers  # auto's is "": skipped
                or reg.component.source):  # a board is a target one names, not a pick
            continue
        try:
            resolved = registry.resolve_machine(reg.name, None, ctx)
            cpu = parse_target(resolved.isa)
        except RvforgeError as error:
            unavailable.append(f"{reg.name} ({error})")
            continue
        lacking = total.lacking(cpu)
        if cpu.xlen == total.xlen and not lacking:
            fits.append((len(cpu.abilities()), reg.name, resolved))
        elif closest is None or len(lacking) < len(closest[0]):
            closest = (lacking, cpu)
    if fits:
        return min(fits, key=lambda fit: fit[:2])[2]
    lacking, cpu = closest if closest is not None else (total.names(), parse_target("rv64i"))
    files = sorted(path for path, need in needs.items() if need.lacking(cpu))
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    where = ("; profiles this host cannot run: " + "; ".join(unavailable) if unavailable
             else "; define one in rvforge.toml ([machines.NAME] with a cpu that has them)")
    raise UsageError(f"--machine auto: no machine profile here has "
                     f"{', '.join(top_level(lacking, total.xlen))} (needed by {shown}){where}")


def machine_for_tree(tree: Tree, registry: Registry, ctx: BuildContext,
                     also: Mapping[str, Needs] | None = None) -> Machine:
    """``--machine auto`` for ``tree``: :func:`pick_machine` of what its ELF files need
    (with ``ctx.deep``, their instructions too) and of ``also`` (files outside it: the
    shared directories' ELF files, by host path)."""
    needs = {**tree_needs(tree, ctx, deep=ctx.deep), **(also or {})}
    machine = pick_machine(needs, registry, ctx)
    total = reduce(lambda a, b: a | b, needs.values(), Needs(64))
    ctx.log.info("machine picked", machine=machine.name, needs=" ".join(total.names()))
    return machine


def machine_for_image(image: Path, registry: Registry, ctx: BuildContext,
                      also: Mapping[str, Needs] | None = None) -> Machine:
    """``--machine auto`` for an image file (an initramfs or tar; an ext4 image's files are
    not read on the host), counting ``also`` too (:func:`machine_for_tree`)."""
    if Artifact.of_image(image).kind == "disk":
        raise UsageError(f"--machine auto reads the image's files, which rvforge cannot do "
                         f"for the ext4 image {image}: pass --machine NAME")
    from rvforge.loading import load_path  # the archive readers: only when an image is read

    return machine_for_tree(load_path(image, ctx), registry, ctx, also)
