"""Machine profiles: the CPU and VM an image is audited for and booted on (a plain value;
``--machine auto`` is worked out by :mod:`rvforge.auto_machine`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


def __getattr__(name: str) -> Any:
    # pick_machine, machine_for_tree and machine_for_image lived here before 0.3: importable
    # from here for one release
    if name in ("pick_machine", "machine_for_tree", "machine_for_image"):
        from rvforge import auto_machine

        return getattr(auto_machine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
