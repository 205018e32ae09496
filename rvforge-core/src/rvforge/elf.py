"""Reading what the auditors need from an ELF file, robustly.

:func:`read_elf` returns an :class:`ElfInfo`: machine, class, type, RISC-V ``e_flags``
(float ABI, RVC, RVE, TSO), the ``Tag_RISCV_arch`` attribute (from ``.riscv.attributes``,
or the ``PT_RISCV_ATTRIBUTES`` segment when section headers are stripped), ``PT_INTERP``,
``DT_NEEDED``, ``DT_RPATH``/``DT_RUNPATH``, ``DT_SONAME``, symbol version needs and
definitions, the undefined dynamic symbols that show runtime CPU dispatch
(``getauxval``, ``__riscv_hwprobe``), and where the executable code is.

Header parsing uses pyelftools. Attributes are read with pyelftools and, when it fails
(0.33 raises on tags it does not know), by :func:`parse_attributes`, which follows the
psABI rule (unknown odd tags carry a NUL-terminated string, even ones a ULEB128).
Symbol tables are read with numpy, which is ~50× faster than iterating pyelftools
symbols on a large library.

Any input — truncated, corrupt or hostile — gives either an :class:`ElfInfo` or an
:class:`ElfUnreadableError` (an :class:`~rvforge.errors.InputError`) whose message says
what is wrong; never another exception.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from elftools.elf.constants import P_FLAGS, SH_FLAGS
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

from rvforge.errors import InputError

ELF_MAGIC = b"\x7fELF"
EM_RISCV = 243
PT_RISCV_ATTRIBUTES = 0x70000003
SHT_RISCV_ATTRIBUTES = 0x70000003
TAG_RISCV_ARCH = 5

EF_RISCV_RVC = 0x1
EF_RISCV_FLOAT_ABI = 0x6
EF_RISCV_RVE = 0x8
EF_RISCV_TSO = 0x10
FLOAT_ABIS = {0: "soft", 2: "single", 4: "double", 6: "quad"}
"""``e_flags & EF_RISCV_FLOAT_ABI`` → float ABI name."""
ABI_NAMES = {"soft": "lp64", "single": "lp64f", "double": "lp64d", "quad": "lp64q"}
"""Float ABI → the LP64 ABI name people use (``-mabi=``)."""

DISPATCH_IMPORTS = frozenset({"getauxval", "__riscv_hwprobe", "__riscv_hwprobe_one"})
"""Imports that let code choose an ISA at run time (hwcaps, the hwprobe syscall)."""
SIGNAL_IMPORTS = frozenset({"signal", "sigaction", "__sigaction"})
SETJMP_IMPORTS = frozenset({"__sigsetjmp", "sigsetjmp", "setjmp", "_setjmp"})
NOTED_IMPORTS = DISPATCH_IMPORTS | SIGNAL_IMPORTS | SETJMP_IMPORTS | {"syscall"}
"""Undefined dynamic symbols recorded in :attr:`ElfInfo.imports`."""

_SYM64 = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                   ("value", "<u8"), ("size", "<u8")])
_SYM32 = np.dtype([("name", "<u4"), ("value", "<u4"), ("size", "<u4"), ("info", "u1"),
                   ("other", "u1"), ("shndx", "<u2")])
_STT_FUNC = 2
_STT_SECTION = 3
_STT_FILE = 4


class ElfUnreadableError(InputError):
    """The file starts like an ELF file but cannot be read (truncated, corrupt)."""


@dataclass(frozen=True, slots=True)
class CodeRange:
    """Executable bytes: a section (``.text``) or, without sections, a PF_X segment.

    :param name: section name, or ``PT_LOAD[n]``.
    :param offset: file offset.
    :param size: bytes in the file.
    :param address: virtual address of the first byte.
    """

    name: str
    offset: int
    size: int
    address: int


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """What rvforge knows about one ELF file (all fields from the file itself)."""

    e_machine: int
    machine: str
    elf_class: int
    e_type: str
    e_flags: int
    arch: str | None = None
    attributes: dict[int, int | str] = field(default_factory=dict)
    interp: str | None = None
    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    version_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    version_defs: tuple[str, ...] = ()
    dispatch_imports: tuple[str, ...] = ()
    imports: frozenset[str] = frozenset()
    """Which of :data:`NOTED_IMPORTS` the object imports."""
    code: tuple[CodeRange, ...] = ()
    code_symbols: tuple[int, ...] = ()
    """Addresses of named symbols (``.symtab``, else ``.dynsym``; not section, file or
    mapping symbols): objdump restarts decoding at each."""
    data_ranges: tuple[tuple[int, int], ...] = ()
    """``(start, end)`` addresses the ``$d`` mapping symbols mark as data inside code."""
    symbol_names: tuple[str, ...] = ()
    """Names of defined function symbols (used to spot per-ISA variants)."""

    @property
    def is_riscv(self) -> bool:
        return self.e_machine == EM_RISCV

    @property
    def float_abi(self) -> str:
        return FLOAT_ABIS[self.e_flags & EF_RISCV_FLOAT_ABI]

    @property
    def abi(self) -> str:
        """``lp64d``, ``lp64``... (``ilp32*`` for 32-bit; ``e`` suffix for RVE)."""
        base = "lp64" if self.elf_class == 64 else "ilp32"
        name = base + ABI_NAMES[self.float_abi][4:]
        return name + ("e" if self.rve else "")

    @property
    def rvc(self) -> bool:
        return bool(self.e_flags & EF_RISCV_RVC)

    @property
    def rve(self) -> bool:
        return bool(self.e_flags & EF_RISCV_RVE)

    @property
    def tso(self) -> bool:
        return bool(self.e_flags & EF_RISCV_TSO)

    @property
    def dynamic(self) -> bool:
        """Linked against shared objects (has an interpreter or DT_NEEDED entries)."""
        return self.interp is not None or bool(self.needed)


def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def read_elf(data: bytes | BinaryIO) -> ElfInfo:
    """Read ``data`` (bytes or a seekable binary stream). Raises only
    :class:`ElfUnreadableError`."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        return _read(ELFFile(stream))
    except ElfUnreadableError:
        raise
    except RecursionError:
        raise ElfUnreadableError("corrupt ELF structures (recursion)") from None
    except Exception as error:  # noqa: BLE001 - pyelftools raises anything on bad input
        raise ElfUnreadableError(_describe(error)) from None


def parse_attributes(blob: bytes) -> dict[int, int | str]:
    """Parse a ``.riscv.attributes`` section body (format version ``A``).

    Only the ``riscv`` vendor subsection's file-scope (``Tag_File``) attributes are
    returned; per the RISC-V psABI an unknown tag with an odd number is a NUL-terminated
    string and with an even number a ULEB128. Raises :class:`ElfUnreadableError` on
    malformed input.
    """
    if not blob or blob[0] != ord("A"):
        raise ElfUnreadableError("malformed .riscv.attributes (no format-version 'A')")
    result: dict[int, int | str] = {}
    pos = 1
    while pos + 4 <= len(blob):
        length = int.from_bytes(blob[pos:pos + 4], "little")
        end = pos + length
        if length < 5 or end > len(blob):
            raise ElfUnreadableError("malformed .riscv.attributes (subsection length)")
        nul = blob.find(b"\0", pos + 4, end)
        if nul < 0:
            raise ElfUnreadableError("malformed .riscv.attributes (vendor name)")
        vendor = blob[pos + 4:nul]
        sub = nul + 1
        while vendor == b"riscv" and sub < end:
            start = sub
            tag, sub = _uleb(blob, sub, end)
            size = int.from_bytes(blob[sub:sub + 4], "little")
            sub += 4
            sub_end = start + size
            if size < 5 or sub_end > end or sub > sub_end:
                raise ElfUnreadableError("malformed .riscv.attributes (sub-subsection)")
            while tag == 1 and sub < sub_end:  # Tag_File
                attr, sub = _uleb(blob, sub, sub_end)
                if attr % 2:
                    nul = blob.find(b"\0", sub, sub_end)
                    if nul < 0:
                        raise ElfUnreadableError("malformed .riscv.attributes (string)")
                    result[attr] = blob[sub:nul].decode("utf-8", "replace")
                    sub = nul + 1
                else:
                    result[attr], sub = _uleb(blob, sub, sub_end)
            sub = sub_end
        pos = end
    return result


def _read(elf: ELFFile) -> ElfInfo:
    header = elf.header
    e_machine = _machine_number(header["e_machine"])
    info: dict[str, object] = {
        "e_machine": e_machine,
        "machine": str(header["e_machine"]),
        "elf_class": elf.elfclass,
        "e_type": str(header["e_type"]),
        "e_flags": int(header["e_flags"]),
    }
    if e_machine != EM_RISCV:
        return ElfInfo(**info)  # type: ignore[arg-type]
    sections = list(elf.iter_sections()) if elf.num_sections() else []
    segments = list(elf.iter_segments())
    attributes = _attributes(elf, sections, segments)
    info["attributes"] = attributes
    arch = attributes.get(TAG_RISCV_ARCH)
    info["arch"] = arch if isinstance(arch, str) else None
    for seg in segments:
        if seg["p_type"] == "PT_INTERP":
            info["interp"] = seg.get_interp_name()
    info.update(_dynamic(sections, segments))
    info.update(_versions(sections))
    info.update(_symbols(elf, sections))
    info["code"] = tuple(_code(sections, segments))
    return ElfInfo(**info)  # type: ignore[arg-type]


def _attributes(elf: ELFFile, sections: list, segments: list) -> dict[int, int | str]:
    for section in sections:
        if section["sh_type"] in (SHT_RISCV_ATTRIBUTES, "SHT_RISCV_ATTRIBUTES"):
            blob = section.data()
            try:
                return {int(a.tag if isinstance(a.tag, int) else _TAGS[a.tag]): a.value
                        for sub in section.iter_subsections()
                        for subsub in sub.iter_subsubsections()
                        for a in subsub.iter_attributes()}
            except Exception:  # noqa: BLE001 - pyelftools raises on unknown tags
                return parse_attributes(blob)
    for seg in segments:
        if seg["p_type"] in (PT_RISCV_ATTRIBUTES, "PT_RISCV_ATTRIBUTES"):
            stream = elf.stream
            stream.seek(seg["p_offset"])
            return parse_attributes(stream.read(min(seg["p_filesz"], 1 << 20)))
    return {}


_TAGS = {"TAG_FILE": 1, "TAG_STACK_ALIGN": 4, "TAG_ARCH": 5, "TAG_UNALIGNED": 6,
         "TAG_PRIV_SPEC": 8, "TAG_PRIV_SPEC_MINOR": 10, "TAG_PRIV_SPEC_REVISION": 12,
         "TAG_ATOMIC_ABI": 14, "TAG_X3_REG_USAGE": 16}


def _dynamic(sections: list, segments: list) -> dict[str, object]:
    dynamic = next((s for s in sections if isinstance(s, DynamicSection)), None)
    if dynamic is None:
        dynamic = next((s for s in segments if isinstance(s, DynamicSegment)), None)
    if dynamic is None:
        return {}
    needed: list[str] = []
    result: dict[str, object] = {}
    for tag in dynamic.iter_tags():
        kind = tag.entry.d_tag
        if kind == "DT_NEEDED":
            needed.append(tag.needed)
        elif kind == "DT_SONAME":
            result["soname"] = tag.soname
        elif kind == "DT_RPATH":
            result["rpath"] = tuple(p for p in tag.rpath.split(":") if p)
        elif kind == "DT_RUNPATH":
            result["runpath"] = tuple(p for p in tag.runpath.split(":") if p)
    result["needed"] = tuple(needed)
    return result


def _versions(sections: list) -> dict[str, object]:
    result: dict[str, object] = {}
    for section in sections:
        if isinstance(section, GNUVerNeedSection):
            needs: dict[str, tuple[str, ...]] = {}
            for verneed, auxes in section.iter_versions():
                needs[verneed.name] = tuple(aux.name for aux in auxes)
            result["version_needs"] = needs
        elif isinstance(section, GNUVerDefSection):
            defs = []
            for verdef, auxes in section.iter_versions():
                if verdef["vd_flags"] & 1:  # VER_FLG_BASE: the file's own soname
                    continue
                defs.extend(aux.name for aux in list(auxes)[:1])
            result["version_defs"] = tuple(defs)
    return result


def _symbols(elf: ELFFile, sections: list) -> dict[str, object]:
    """Function symbol addresses and names (``.symtab`` if present, else ``.dynsym``),
    ``$d``/``$x`` mapping-symbol data ranges, and dispatch imports (``.dynsym``)."""
    result: dict[str, object] = {}
    by_name = {s.name: s for s in sections}
    dtype = _SYM64 if elf.elfclass == 64 else _SYM32
    dynsym = by_name.get(".dynsym")
    table = by_name.get(".symtab") or dynsym
    if dynsym is not None and dynsym["sh_type"] == "SHT_DYNSYM":
        syms, strtab = _table(elf, dynsym, dtype)
        undefined = syms[syms["shndx"] == 0]
        names = {_name(strtab, int(n)) for n in undefined["name"]}
        result["dispatch_imports"] = tuple(sorted(names & DISPATCH_IMPORTS))
        result["imports"] = frozenset(names & NOTED_IMPORTS)
    if table is None or table["sh_type"] not in ("SHT_SYMTAB", "SHT_DYNSYM"):
        return result
    syms, strtab = _table(elf, table, dtype)
    defined = syms[(syms["shndx"] != 0) & (syms["name"] != 0)]
    kinds = defined["info"] & 0xF
    mapping_mask = np.array([strtab[n:n + 1] == b"$" for n in defined["name"].tolist()],
                            dtype=bool)
    # objdump restarts decoding at every named symbol but section, file and mapping ones
    labels = defined[(kinds != _STT_SECTION) & (kinds != _STT_FILE) & ~mapping_mask]
    result["code_symbols"] = tuple(sorted(set(labels["value"].tolist())))
    funcs = labels[(labels["info"] & 0xF) == _STT_FUNC]
    result["symbol_names"] = tuple(_name(strtab, int(n)) for n in funcs["name"].tolist())
    mapping = [(int(s["value"]), _name(strtab, int(s["name"])))
               for s in defined[mapping_mask]]
    result["data_ranges"] = _data_ranges(mapping)
    return result


def _table(elf: ELFFile, section, dtype: np.dtype) -> tuple[np.ndarray, bytes]:
    data = section.data()
    count = len(data) // dtype.itemsize
    syms = np.frombuffer(data, dtype=dtype, count=count)
    strtab = elf.get_section(section["sh_link"]).data()
    return syms, strtab


def _name(strtab: bytes, offset: int) -> str:
    end = strtab.find(b"\0", offset)
    return strtab[offset:end if end >= 0 else len(strtab)].decode("utf-8", "replace")


def _data_ranges(mapping: list[tuple[int, str]]) -> tuple[tuple[int, int], ...]:
    """``$d`` … next ``$x`` (or ``$x<isa>``) mapping symbols → data ranges."""
    ranges = []
    start: int | None = None
    for address, name in sorted(mapping):
        if name.startswith("$d") and start is None:
            start = address
        elif name.startswith("$x") and start is not None:
            if address > start:
                ranges.append((start, address))
            start = None
    if start is not None:
        ranges.append((start, 1 << 64))
    return tuple(ranges)


def _code(sections: list, segments: list) -> Iterable[CodeRange]:
    found = False
    for section in sections:
        if section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and section["sh_type"] == "SHT_PROGBITS":
            found = True
            yield CodeRange(section.name, section["sh_offset"], section["sh_size"],
                            section["sh_addr"])
    if found:
        return
    for n, seg in enumerate(segments):
        if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & P_FLAGS.PF_X:
            yield CodeRange(f"PT_LOAD[{n}]", seg["p_offset"], seg["p_filesz"], seg["p_vaddr"])


def _machine_number(value: object) -> int:
    if isinstance(value, int):
        return value
    from elftools.elf.enums import ENUM_E_MACHINE

    return int(ENUM_E_MACHINE.get(str(value), -1))


def _uleb(blob: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ElfUnreadableError("malformed .riscv.attributes (ULEB128)")
        byte = blob[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _describe(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    if len(text) > 200:
        text = text[:200] + "…"
    return f"cannot read ELF structures ({text}); the file is truncated or corrupt"
