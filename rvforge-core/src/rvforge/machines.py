"""Machine profiles: the CPU and VM an image is audited for and booted on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.registry import Registry
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
    """

    name: str
    launcher: str
    isa: str
    memory_mb: int = 2048
    cpus: int = 2
    summary: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


AUTO_MACHINE = "auto"
"""``--machine auto``: the smallest bootable profile whose CPU has what the image needs."""

_BASELINE = Machine(name="rv64i", launcher="", isa="rv64i",
                    summary="the bare base ISA: every extension a file needs is missing")


def needed_extensions(tree: Tree, registry: Registry, ctx: BuildContext
                      ) -> dict[str, list[str]]:
    """Extension (or instruction class ``a|b``) → the files that need it: the ``isa``
    auditor's errors against a bare rv64i CPU. Files that pick code paths at run time
    (its warnings) need nothing beyond their baseline."""
    from rvforge.findings import Severity
    from rvforge.pipeline import audit

    report = audit(registry, tree, _BASELINE, ctx, ["isa"])
    needed: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.severity is not Severity.ERROR:
            continue
        if finding.code == "isa-required":
            names = list(finding.details.get("missing", ()))
        elif finding.code == "isa-instructions":
            names = list(finding.details.get("instructions", {}))
        else:
            continue
        for name in names:
            needed.setdefault(name, []).append(finding.path or "")
    return needed


def pick_machine(needed: Mapping[str, list[str]], registry: Registry, ctx: BuildContext
                 ) -> Machine:
    """The bootable profile with the fewest extensions that has every one of ``needed``
    (an instruction class ``a|b`` is met by either), its ISA resolved.

    :raises UsageError: (exit 2) when none has them, naming the missing extensions and the
        profiles this host cannot resolve (their reasons name the QEMU that has them).
    """
    from rvforge.errors import RvforgeError, UsageError
    from rvforge.riscv.isa import parse_target, sort_key, top_level

    fits: list[tuple[int, str, Machine]] = []
    unavailable: list[str] = []
    closest: set[str] | None = None
    for reg in registry.machines:
        machine = reg.component
        if reg.name == AUTO_MACHINE or machine.launcher not in registry.launchers:
            continue
        try:
            resolved = registry.resolve_machine(reg.name, None, ctx)
            have = parse_target(resolved.isa).closure()
        except RvforgeError as error:
            unavailable.append(f"{reg.name} ({error})")
            continue
        lacking = {name for name in needed if not any(p in have for p in name.split("|"))}
        if not lacking:
            fits.append((len(have), reg.name, resolved))
        elif closest is None or len(lacking) < len(closest):
            closest = lacking
    if fits:
        return min(fits, key=lambda fit: fit[:2])[2]
    lacking_names = sorted(closest if closest is not None else needed, key=sort_key)
    files = sorted({path for name in lacking_names for path in needed[name]})
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    where = ("; profiles this host cannot run: " + "; ".join(unavailable) if unavailable
             else "; define one in rvforge.toml ([machines.NAME] with a cpu that has them)")
    raise UsageError(f"--machine auto: no machine profile here has "
                     f"{', '.join(top_level(lacking_names))} (needed by {shown}){where}")


def machine_for_tree(tree: Tree, registry: Registry, ctx: BuildContext) -> Machine:
    """``--machine auto`` for ``tree``: :func:`pick_machine` of its :func:`needed_extensions`."""
    needed = needed_extensions(tree, registry, ctx)
    machine = pick_machine(needed, registry, ctx)
    ctx.log.info("machine picked", machine=machine.name,
                 needs=" ".join(sorted(n for n in needed if len(n) == 1)) or "rv64i")
    return machine


def machine_for_image(image: Path, registry: Registry, ctx: BuildContext) -> Machine:
    """``--machine auto`` for an image file (an initramfs or tar; an ext4 image's files are
    not read on the host)."""
    from rvforge.artifacts import Artifact
    from rvforge.errors import UsageError
    from rvforge.loading import load_path

    if Artifact.of_image(image).kind == "disk":
        raise UsageError(f"--machine auto reads the image's files, which rvforge cannot do "
                         f"for the ext4 image {image}: pass --machine NAME")
    return machine_for_tree(load_path(image, ctx), registry, ctx)
