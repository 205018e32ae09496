"""rvforge-qemu's machine profiles and the settings a profile carries.

A profile is a :class:`rvforge.Machine` whose ``options`` hold the QEMU settings:

- ``cpu``: the ``-cpu`` string (default ``rv64``);
- ``vlen``: the vector length in bits for an RVV 1.0 CPU, a power of two from 128 to 1024
  (QEMU's ``vlen`` property): it replaces the ``cpu`` string's ``vlen`` and, on ``rv64``,
  turns ``v`` on, so one profile runs a binary at several VLENs;
- ``bios``: the ``-bios`` firmware (default ``default``: OpenSBI from qemu-system-data);
- ``extra_args``: more QEMU arguments, a list or one shell-quoted string;
- ``append``: more kernel command-line words;
- ``qemu``: the ``qemu-system-riscv64`` binary (default: ``--qemu``, ``$RVFORGE_QEMU``, PATH;
  see :mod:`rvforge_qemu.qemubin`);
- ``shares``, ``net``, ``forwards``: what ``--share``, ``--net`` and ``--forward`` give
  (a list of ``HOST:GUEST[:ro]``, a boolean, a list of ``HOSTPORT:GUESTPORT``), added to
  the command line's.

User profiles come from ``[machines.NAME]`` tables in ``rvforge.toml`` with the same keys.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvforge import Machine, UsageError

DEFAULT_CPU = "rv64"
DEFAULT_BIOS = "default"
DEFAULT_MEMORY_MB = 2048

BASE_PROFILES = (
    ("qemu-virt", "rv64", "QEMU virt, -cpu rv64: RV64GC with H and Zba/Zbb/Zbc/Zbs, no vector"),
    ("qemu-virt-v", "rv64,v=true,vlen=128,elen=64",
     "QEMU virt with the vector extension V 1.0, VLEN 128"),
    ("qemu-virt-v256", "rv64,v=true,vlen=256,elen=64",
     "QEMU virt with the vector extension V 1.0, VLEN 256"),
    ("qemu-virt-v512", "rv64,v=true,vlen=512,elen=64",
     "QEMU virt with the vector extension V 1.0, VLEN 512"),
    ("qemu-virt-v1024", "rv64,v=true,vlen=1024,elen=64",
     "QEMU virt with the vector extension V 1.0, VLEN 1024"),
)
VLENS = (128, 256, 512, 1024)
"""The vector lengths QEMU's ``vlen`` property takes (a ``vlen`` setting is one of them)."""
OPTIONAL_PROFILES = (
    ("qemu-virt-max", "max", "QEMU virt, -cpu max: every extension this QEMU implements"),
    ("qemu-virt-rva23", "rva23s64", "QEMU virt, -cpu rva23s64: the RVA23 profile"),
)
"""Always registered; on a QEMU without the CPU model (7.2 has neither) resolving them is
refused with the QEMU release that has it (:meth:`SystemQemu.require_model`)."""


@dataclass(frozen=True)
class QemuSettings:
    """The QEMU side of a machine profile, validated."""

    cpu: str
    bios: str
    extra_args: tuple[str, ...]
    append: tuple[str, ...]
    shares: tuple[str, ...] = ()
    net: bool = False
    forwards: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        """The CPU model without its properties (``rv64`` of ``rv64,v=true``)."""
        return self.cpu.split(",")[0]


def settings_of(machine: Machine) -> QemuSettings:
    """Read and check ``machine.options``."""
    options = dict(machine.options)
    known = {"cpu", "bios", "extra_args", "append", "qemu", "smp",  # smp: read by rvforge.config
             "shares", "net", "forwards", "vlen"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"machine {machine.name!r}: unknown setting {unknown[0]!r} for the "
                         f"QEMU launchers (known: {', '.join(sorted(known))})")
    cpu = str(options.get("cpu", DEFAULT_CPU))
    if "vlen" in options:
        cpu = with_vlen_setting(cpu, options["vlen"], machine.name)
    return QemuSettings(
        cpu=cpu,
        bios=str(options.get("bios", DEFAULT_BIOS)),
        extra_args=_words(options.get("extra_args", ()), machine.name, "extra_args"),
        append=_words(options.get("append", ()), machine.name, "append"),
        shares=_list(options.get("shares", ()), machine.name, "shares"),
        net=_flag(options.get("net", False), machine.name, "net"),
        forwards=_list(options.get("forwards", ()), machine.name, "forwards"),
    )


def relative_paths(settings: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """``settings`` of a profile in a config file in ``base`` with the relative paths that
    only this launcher knows are paths made relative to ``base``: each share's HOST
    (``shares = ["./build:/mnt/build"]``) and a ``bios`` file given with a slash (a bare
    name is QEMU's to find in its data directories, as ``default`` is)."""
    resolved = dict(settings)
    shares = settings.get("shares")
    if isinstance(shares, list):
        resolved["shares"] = [_under(base, spec) if isinstance(spec, str) else spec
                              for spec in shares]
    bios = settings.get("bios")
    if isinstance(bios, str) and "/" in bios:
        resolved["bios"] = _under(base, bios)
    return resolved


def _under(base: Path, path: str) -> str:
    """``path`` relative to ``base`` unless absolute or ``~``-rooted (the rest of a
    ``HOST:GUEST`` follows the HOST unchanged)."""
    return path if path.startswith(("/", "~")) or not path else f"{base}/{path}"


def with_vlen_setting(cpu: str, vlen: object, machine: str) -> str:
    """``cpu`` with its ``vlen`` property set to ``vlen`` (checked against :data:`VLENS`),
    and ``v=true`` added to an ``rv64`` CPU that does not say ``v``."""
    if isinstance(vlen, bool) or not isinstance(vlen, int) or vlen not in VLENS:
        raise UsageError(f"machine {machine!r}: vlen must be one of "
                         f"{', '.join(map(str, VLENS))} (QEMU's vlen property, in bits), "
                         f"not {vlen!r}")
    model, *props = cpu.split(",")
    props = [p for p in props if not p.startswith("vlen=")]
    if model == DEFAULT_CPU and not any(p.startswith("v=") for p in props):
        props.append("v=true")
    return ",".join([model, *props, f"vlen={vlen}"])


def _words(value: object, machine: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as error:  # an unbalanced quote
            raise UsageError(f"machine {machine!r}: {key} {value[:80]!r} does not split into "
                             f"words ({error}); balance its quotes") from None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"machine {machine!r}: {key} must be a string or a list of strings")


def _list(value: object, machine: str, key: str) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"machine {machine!r}: {key} must be a list of strings")


def _flag(value: object, machine: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise UsageError(f"machine {machine!r}: {key} must be true or false")


def builtin_profiles() -> Iterator[Machine]:
    """The base profiles, those needing a newer QEMU than 7.2, then the boards
    (:mod:`rvforge_qemu.boards`)."""
    from rvforge_qemu.boards import board_profiles

    for name, cpu, summary in (*BASE_PROFILES, *OPTIONAL_PROFILES):
        yield _profile(name, cpu, summary)
    yield from board_profiles(DEFAULT_MEMORY_MB)


def _profile(name: str, cpu: str, summary: str) -> Machine:
    return Machine(name=name, launcher="qemu-virt", isa="", memory_mb=DEFAULT_MEMORY_MB,
                   cpus=2, summary=summary, options={"cpu": cpu})
