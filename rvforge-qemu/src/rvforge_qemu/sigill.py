"""Explaining an illegal instruction in the guest: which instruction, which extension,
which binary of the image, and what to do about it."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from rvforge import Machine

from rvforge_qemu.console import IllegalInstruction
from rvforge_qemu.insn import decode


def isa_extensions(isa: str) -> set[str]:
    """The extensions an ISA string names, with V's sub-extensions (``rv64gcv_zba`` →
    ``{i, m, a, f, d, c, v, zba, zve32x, ...}``)."""
    parts = isa.lower().split("_")
    base = re.sub(r"^rv(32|64|128)", "", parts[0])
    names = set(base.replace("g", "imafd")) | {p for p in parts[1:] if p}
    if "v" in names:
        names |= {"zve32x", "zve32f", "zve64x", "zve64f", "zve64d"}
    return names


def diagnose(events: Iterable[IllegalInstruction], machine: Machine,
             find_files: Callable[[str], list[str]],
             machines: Callable[[], Iterable[Machine]],
             flag: Callable[[str], str] = lambda name: f"--{name}") -> list[str]:
    """One message per distinct faulting instruction.

    :param find_files: paths in the image whose file name is the given one (shared files
        as their host path and where the guest sees them).
    :param machines: the machine profiles to suggest one that has the extension (their
        ``isa`` resolved).
    :param flag: spells an option in the fix (:meth:`rvforge.BuildContext.flag`).
    """
    messages: list[str] = []
    seen: set[tuple[str | None, int | None]] = set()
    for event in events:
        key = (event.file or event.comm, event.word)
        if key in seen:
            continue
        seen.add(key)
        messages.append(_message(event, machine, find_files, machines, flag))
    return messages


def _message(event: IllegalInstruction, machine: Machine,
             find_files: Callable[[str], list[str]],
             machines: Callable[[], Iterable[Machine]], flag: Callable[[str], str]) -> str:
    name = event.file or event.comm
    paths = find_files(name)
    where = ", ".join(paths) if paths else f"a file named {name!r}"
    at = f" at offset 0x{event.offset:x}" if event.offset is not None else ""
    if event.word is None:
        return (f"illegal instruction in {where} (process {event.comm}[{event.pid}]){at}; "
                "the kernel did not print the instruction word")
    decoded = decode(event.word)
    head = (f"illegal instruction in {where} (process {event.comm}[{event.pid}]){at}: "
            f"0x{decoded.word:08x} is {decoded.mnemonic}")
    if decoded.extension is None:
        return head + f"; machine {machine.name!r} ({machine.isa}) cannot execute it"
    if any(ext in isa_extensions(machine.isa) for ext in decoded.alternatives):
        return head + (f", from {decoded.extension_text}, which machine {machine.name!r} "
                       "has: the instruction itself is malformed or reserved")
    having = [m.name for m in machines()
              if any(ext in isa_extensions(m.isa) for ext in decoded.alternatives)]
    fixes = [f"boot on {flag('machine')} {having[0]} (its CPU has it)"] if having else []
    fixes.append(f"rebuild {posixpath.basename(name)} without it (e.g. -march=rv64gc)")
    return head + (f", from {decoded.extension_text}, which machine {machine.name!r} "
                   f"({machine.isa}) lacks. Fix: " + ", or ".join(fixes))
