"""Machine profiles: the CPU and VM an image is audited for and booted on."""

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
    """

    name: str
    launcher: str
    isa: str
    memory_mb: int = 2048
    cpus: int = 2
    summary: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
