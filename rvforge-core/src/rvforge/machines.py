"""Machine profiles: the CPU and VM an image is audited for and booted on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.registry import Registry
    from rvforge.riscv.isa import Isa, Needs
    from rvforge.tree import Tree

DEFAULT_MACHINE = "qemu-virt"
"""The machine used when none is given, if a plugin provides it (rvforge-qemu does)."""

FALLBACK_MACHINE = "generic-rv64gc"
"""Core's own profile, used when no plugin provides :data:`DEFAULT_MACHINE`."""


@dataclass(frozen=True, slots=True)
class Machine:
    """A target machine.

    :param name: profile name (``qemu-virt``).
    :param launcher: name of the launcher that boots it (``qemu-virt``), or ``""`` for a
        profile that is only an audit target.
    :param isa: the ISA string the CPU implements (``rv64imafdc_zicsr_zifencei``...), or
        ``""`` when the launcher works it out (see :meth:`rvforge.Launcher.machine_isa`).
    :param memory_mb: RAM of the VM; the size audit checks the unpacked image against it.
    :param cpus: number of virtual CPUs.
    :param summary: one line for ``rvforge machines``.
    :param options: launcher-specific settings (``cpu``, ``bios``, ``extra_args``...).
    :param source: where the ISA string comes from, for a profile of real hardware (a
        device tree in Linux's tree, a vendor manual); ``""`` for emulated CPUs.
    """

    name: str
    launcher: str
    isa: str
    memory_mb: int = 2048
    cpus: int = 2
    summary: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


AUTO_MACHINE = "auto"
"""``--machine auto``: the smallest bootable profile whose CPU has what the image needs."""

def pick_machine(needs: Mapping[str, Needs], registry: Registry, ctx: BuildContext
                 ) -> Machine:
    """The bootable profile with the fewest extensions whose CPU meets every one of
    ``needs`` (path → what that file needs, :func:`~rvforge.builtin.auditors.isa.tree_needs`),
    its ISA resolved.

    :raises UsageError: (exit 2) when none has them, naming the missing extensions, the
        files that need them and the profiles this host cannot resolve (their reasons name
        the QEMU that has them).
    """
    from functools import reduce

    from rvforge.errors import RvforgeError, UsageError
    from rvforge.riscv.isa import Needs, parse_target, top_level

    total = reduce(lambda a, b: a | b, needs.values(), Needs(64))
    fits: list[tuple[int, str, Machine]] = []
    unavailable: list[str] = []
    closest: tuple[list[str], Isa] | None = None
    for reg in registry.machines:
        if (reg.name == AUTO_MACHINE or reg.component.launcher not in registry.launchers
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
    from functools import reduce

    from rvforge.builtin.auditors.isa import tree_needs
    from rvforge.riscv.isa import Needs

    needs = {**tree_needs(tree, ctx, deep=ctx.deep), **(also or {})}
    machine = pick_machine(needs, registry, ctx)
    total = reduce(lambda a, b: a | b, needs.values(), Needs(64))
    ctx.log.info("machine picked", machine=machine.name, needs=" ".join(total.names()))
    return machine


def machine_for_image(image: Path, registry: Registry, ctx: BuildContext,
                      also: Mapping[str, Needs] | None = None) -> Machine:
    """``--machine auto`` for an image file (an initramfs or tar; an ext4 image's files are
    not read on the host), counting ``also`` too (:func:`machine_for_tree`)."""
    from rvforge.artifacts import Artifact
    from rvforge.errors import UsageError
    from rvforge.loading import load_path

    if Artifact.of_image(image).kind == "disk":
        raise UsageError(f"--machine auto reads the image's files, which rvforge cannot do "
                         f"for the ext4 image {image}: pass --machine NAME")
    return machine_for_tree(load_path(image, ctx), registry, ctx, also)
