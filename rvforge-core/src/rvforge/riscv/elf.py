"""Reading what the auditors need from an ELF file: fast, strict and robust.

:func:`read_elf` returns an :class:`ElfInfo`: machine, class, type, RISC-V ``e_flags``
(float ABI, RVC, RVE, TSO), the RISC-V attributes (from the ``.riscv.attributes`` section,
or the ``PT_RISCV_ATTRIBUTES`` segment when section headers are stripped), ``PT_INTERP``,
``DT_NEEDED``, ``DT_RPATH``/``DT_RUNPATH``, ``DT_SONAME``, symbol version needs and
definitions, and where the executable code is. :func:`read_symbols` returns the
:class:`ElfSymbols` the auditors need only sometimes (dispatch evidence, the deep sweep):
noted imports, function names, decoding restart addresses and ``$d`` data ranges.

The reader is a few ``struct`` unpacks (numpy for symbol tables) over exactly the bytes it
needs: the ELF header, program and section headers, the section-name table, and the
sections it reads. A file is read with ``os.pread`` (never mapped: a file truncated while
mapped would kill the process with SIGBUS), bytes are sliced. Every offset, size and count
is checked against the file before use; any input — truncated, corrupt or hostile — gives
either a result or an :class:`ElfUnreadableError` (an :class:`~rvforge.errors.InputError`)
whose message says what is wrong, never another exception. pyelftools is the reference
in the tests (``rvforge-core/tests/elf_reference.py``), not a dependency: constructing its
``ELFFile`` alone costs ~4.5 ms per file, ~50× this whole reader.

Attributes follow the psABI rule for tags it does not know (odd: NUL-terminated string,
even: ULEB128), see :func:`parse_attributes`.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Literal, NamedTuple

from rvforge.errors import InputError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EM_RISCV", "CodeRange", "ElfInfo", "ElfSymbols", "ElfUnreadableError", "is_elf",
           "parse_attributes", "read_elf", "read_symbols"]

ELF_MAGIC = b"\x7fELF"
EM_RISCV = 243
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_RISCV_ATTRIBUTES = 0x70000003
PF_X = 0x1
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_DYNAMIC = 6
SHT_DYNSYM = 11
SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_RISCV_ATTRIBUTES = 0x70000003
SHF_EXECINSTR = 0x4
SHN_XINDEX = 0xFFFF
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
DT_FLAGS_1 = 0x6FFFFFFB
DF_1_PIE = 0x08000000
TAG_RISCV_ARCH = 5
VER_FLG_BASE = 1

EF_RISCV_RVC = 0x1
EF_RISCV_FLOAT_ABI = 0x6
EF_RISCV_RVE = 0x8
EF_RISCV_TSO = 0x10
FLOAT_ABIS = {0: "soft", 2: "single", 4: "double", 6: "quad"}
"""``e_flags & EF_RISCV_FLOAT_ABI`` → float ABI name."""
ABI_NAMES = {"soft": "lp64", "single": "lp64f", "double": "lp64d", "quad": "lp64q"}
"""Float ABI → the LP64 ABI name people use (``-mabi=``)."""

E_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
E_MACHINES = {
    2: "EM_SPARC", 3: "EM_386", 4: "EM_68K", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64",
    22: "EM_S390", 40: "EM_ARM", 42: "EM_SH", 43: "EM_SPARCV9", 50: "EM_IA_64",
    62: "EM_X86_64", 83: "EM_AVR", 94: "EM_XTENSA", 164: "EM_QDSP6", 183: "EM_AARCH64",
    190: "EM_CUDA", 220: "EM_Z80", 224: "EM_AMDGPU", 243: "EM_RISCV", 247: "EM_BPF",
    258: "EM_LOONGARCH",
}
"""Names of the ``e_machine`` values found in practice (pyelftools' spelling); others are
named ``EM_<number>``."""

DISPATCH_IMPORTS = frozenset({"getauxval", "__riscv_hwprobe", "__riscv_hwprobe_one"})
"""Imports that let code choose an ISA at run time (hwcaps, the hwprobe syscall)."""
SIGNAL_IMPORTS = frozenset({"signal", "sigaction", "__sigaction"})
SETJMP_IMPORTS = frozenset({"__sigsetjmp", "sigsetjmp", "setjmp", "_setjmp"})
NOTED_IMPORTS = DISPATCH_IMPORTS | SIGNAL_IMPORTS | SETJMP_IMPORTS | {"syscall"}
"""Undefined dynamic symbols recorded in :attr:`ElfSymbols.imports`."""

_SYM64 = [("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
          ("value", "<u8"), ("size", "<u8")]
_SYM32 = [("name", "<u4"), ("value", "<u4"), ("size", "<u4"), ("info", "u1"),
          ("other", "u1"), ("shndx", "<u2")]
"""numpy record layouts of ``Elf64_Sym`` and ``Elf32_Sym`` (numpy itself is imported when
a symbol table is first read: ~0.2 s that commands which read none never pay)."""
_STT_FUNC = 2
_STT_SECTION = 3
_STT_FILE = 4
_EHDR = {64: "HHIQQQIHHHHHH", 32: "HHIIIIIHHHHHH"}
_PHDR = {64: "IIQQQQQQ", 32: "IIIIIIII"}
_SHDR = {64: "IIQQQQIIQQ", 32: "IIIIIIIIII"}
_DYN = {64: "qQ", 32: "iI"}
_MAX_ATTRIBUTES = 1 << 20
"""Largest attributes segment read (real ones are ~100 bytes)."""


class ElfUnreadableError(InputError):
    """The file starts like an ELF file but cannot be read (truncated, corrupt)."""


class CodeRange(NamedTuple):
    """Executable bytes: a section (``.text``) or, without sections, a PF_X segment
    (a named tuple: thousands are made when a tree's facts come from the cache).

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
    """What rvforge knows about one ELF file (all fields from the file itself; small
    enough to cache, see :mod:`rvforge.riscv.facts_cache`)."""

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
    code: tuple[CodeRange, ...] = ()
    has_dynamic: bool = False
    flags_1: int = 0

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

    @property
    def is_library(self) -> bool:
        """A shared object the dynamic loader maps (ET_DYN with a dynamic section, neither
        a program with an interpreter nor a static PIE), even one without DT_NEEDED."""
        return (self.e_type == "ET_DYN" and self.has_dynamic and self.interp is None
                and not self.flags_1 & DF_1_PIE)


@dataclass(frozen=True, slots=True)
class ElfSymbols:
    """What the symbol tables say (read only when needed: :func:`read_symbols`).

    :param imports: which of :data:`NOTED_IMPORTS` the object imports (``.dynsym``).
    :param dispatch_imports: the imports of :data:`DISPATCH_IMPORTS`, sorted.
    :param code_symbols: addresses of named symbols (``.symtab``, else ``.dynsym``; not
        section, file or mapping symbols): objdump restarts decoding at each.
    :param data_ranges: ``(start, end)`` addresses the ``$d`` mapping symbols mark as
        data inside code.
    :param symbol_names: names of defined function symbols (to spot per-ISA variants).
    """

    imports: frozenset[str] = frozenset()
    dispatch_imports: tuple[str, ...] = ()
    code_symbols: tuple[int, ...] = ()
    data_ranges: tuple[tuple[int, int], ...] = ()
    symbol_names: tuple[str, ...] = ()


def is_elf(head: bytes) -> bool:
    return head[:4] == ELF_MAGIC


def read_elf(data: bytes | bytearray | memoryview | BinaryIO) -> ElfInfo:
    """Read ``data`` (bytes, or a seekable binary stream: a real file is read with
    ``pread``). Raises only :class:`ElfUnreadableError`."""
    try:
        return _Elf(_source(data)).info()
    except _HOSTILE as error:
        raise ElfUnreadableError(_describe(error)) from None


def read_symbols(data: bytes | bytearray | memoryview | BinaryIO) -> ElfSymbols:
    """The symbol-table facts of the ELF file ``data`` (see :class:`ElfSymbols`).
    Raises only :class:`ElfUnreadableError`."""
    try:
        return _Elf(_source(data)).symbols()
    except _HOSTILE as error:
        raise ElfUnreadableError(_describe(error)) from None


def parse_attributes(blob: bytes, byteorder: Literal["little", "big"] = "little"
                     ) -> dict[int, int | str]:
    """Parse a ``.riscv.attributes`` section body (format version ``A``); its length
    fields are in the ELF file's ``byteorder`` (binutils writes them so).

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
        length = int.from_bytes(blob[pos:pos + 4], byteorder)
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
            size = int.from_bytes(blob[sub:sub + 4], byteorder)
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


_HOSTILE = (struct.error, ValueError, IndexError, OverflowError, UnicodeError, MemoryError,
            OSError)
"""What a hostile file can provoke in the reader besides :class:`ElfUnreadableError`
(which is not among them: it passes through as it is)."""


class _Section(NamedTuple):
    name_offset: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


class _Segment(NamedTuple):
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class _Source:
    """Bounds-checked reads of a file's bytes: ``read(offset, size)`` returns exactly
    ``size`` bytes or raises :class:`ElfUnreadableError`."""

    __slots__ = ("_pread", "size")

    def __init__(self, pread: Callable[[int, int], bytes], size: int) -> None:
        self._pread = pread
        self.size = size

    def read(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ElfUnreadableError(
                f"{what} lies outside the file (offset {offset:#x}, {size} bytes, file "
                f"{self.size} bytes); the file is truncated or corrupt")
        data = self._pread(offset, size)
        if len(data) != size:
            raise ElfUnreadableError(f"{what}: the file ended early (truncated while read?)")
        return data


def _source(data: bytes | bytearray | memoryview | BinaryIO) -> _Source:
    if isinstance(data, bytes | bytearray | memoryview):
        blob = bytes(data)
        return _Source(lambda offset, size: blob[offset:offset + size], len(blob))
    try:
        fd = data.fileno()
        size = os.fstat(fd).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        stream = data

        def read(offset: int, size: int) -> bytes:
            stream.seek(offset)
            return stream.read(size)

        size = stream.seek(0, io.SEEK_END)
        return _Source(read, size)
    return _Source(lambda offset, size: os.pread(fd, size, offset), size)


class _Elf:
    """One ELF file's headers, read on construction; facts on request."""

    def __init__(self, source: _Source) -> None:
        self.src = source
        ident = source.read(0, 16, "the ELF identification")
        if ident[:4] != ELF_MAGIC:
            raise ElfUnreadableError("not an ELF file (bad magic)")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfUnreadableError(f"unknown ELF class {ident[4]} or data encoding "
                                     f"{ident[5]}; the file is corrupt")
        self.bits = 64 if ident[4] == 2 else 32
        self.endian = "<" if ident[5] == 1 else ">"
        self.order: Literal["little", "big"] = "little" if ident[5] == 1 else "big"
        fmt = self.endian + _EHDR[self.bits]
        (e_type, self.e_machine, _version, _entry, self.phoff, self.shoff, self.e_flags,
         _ehsize, self.phentsize, self.phnum, self.shentsize, shnum, shstrndx
         ) = struct.unpack(fmt, source.read(16, struct.calcsize(fmt), "the ELF header"))
        self.e_type = E_TYPES.get(e_type, f"ET_{e_type:#x}")
        self._shnum, self._shstrndx = shnum, shstrndx
        self._segments: list[_Segment] | None = None
        self._sections: list[_Section] | None = None
        self._names: bytes | None = None

    # -- headers ---------------------------------------------------------------------

    def segments(self) -> list[_Segment]:
        if self._segments is None:
            self._segments = []
            if self.phnum:
                fmt = self.endian + _PHDR[self.bits]
                self._check_entsize(self.phentsize, fmt, "program header")
                raw = self.src.read(self.phoff, self.phnum * self.phentsize,
                                    "the program header table")
                for fields in struct.iter_unpack(fmt, raw):
                    if self.bits == 64:
                        p_type, flags, offset, vaddr, _paddr, filesz = fields[:6]
                    else:
                        p_type, offset, vaddr, _paddr, filesz, _memsz, flags = fields[:7]
                    self._segments.append(_Segment(p_type, flags, offset, vaddr, filesz))
        return self._segments

    def sections(self) -> list[_Section]:
        if self._sections is None:
            self._sections = []
            if self.shoff:
                fmt = self.endian + _SHDR[self.bits]
                self._check_entsize(self.shentsize, fmt, "section header")
                count = self._shnum
                if count == 0:  # more than 0xff00 sections: the count is in section 0
                    count = self._section_at(0, fmt).size
                if count * self.shentsize > self.src.size:
                    raise ElfUnreadableError(f"{count} section headers cannot fit in the "
                                             "file; it is corrupt")
                raw = self.src.read(self.shoff, count * self.shentsize,
                                    "the section header table")
                self._sections = [_Section(*fields) for fields in struct.iter_unpack(fmt, raw)]
        return self._sections

    def _section_at(self, index: int, fmt: str) -> _Section:
        raw = self.src.read(self.shoff + index * self.shentsize, self.shentsize,
                            "a section header")
        return _Section(*struct.unpack(fmt, raw))

    def _check_entsize(self, entsize: int, fmt: str, what: str) -> None:
        if entsize != struct.calcsize(fmt):
            raise ElfUnreadableError(f"{what} entries of {entsize} bytes (ELF{self.bits} "
                                     f"has {struct.calcsize(fmt)}); the file is corrupt")

    def section(self, index: int, what: str) -> _Section:
        sections = self.sections()
        if not 0 <= index < len(sections):
            raise ElfUnreadableError(f"{what} names section {index}, which does not exist")
        return sections[index]

    def data(self, section: _Section, what: str) -> bytes:
        return self.src.read(section.offset, section.size, what)

    def section_name(self, section: _Section) -> str:
        if self._names is None:
            index = self._shstrndx
            if index == SHN_XINDEX:
                index = self.section(0, "the section header").link
            self._names = self.data(self.section(index, "e_shstrndx"), "the section names")
        return _string(self._names, section.name_offset, "a section name")

    # -- facts -----------------------------------------------------------------------

    def info(self) -> ElfInfo:
        base = {"e_machine": self.e_machine,
                "machine": E_MACHINES.get(self.e_machine, f"EM_{self.e_machine}"),
                "elf_class": self.bits, "e_type": self.e_type, "e_flags": self.e_flags}
        if self.e_machine != EM_RISCV:
            return ElfInfo(**base)
        attributes = self.attributes()
        arch = attributes.get(TAG_RISCV_ARCH)
        interp = None
        for seg in self.segments():
            if seg.type == PT_INTERP:
                raw = self.src.read(seg.offset, seg.filesz, "PT_INTERP")
                interp = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        return ElfInfo(**base, arch=arch if isinstance(arch, str) else None,
                       attributes=attributes, interp=interp,
                       **self.dynamic(), **self.versions(),  # type: ignore[arg-type]
                       code=tuple(self.code()))

    def attributes(self) -> dict[int, int | str]:
        for section in self.sections():
            if section.type == SHT_RISCV_ATTRIBUTES:
                return parse_attributes(self.data(section, ".riscv.attributes"), self.order)
        for seg in self.segments():
            if seg.type == PT_RISCV_ATTRIBUTES:
                return parse_attributes(self.src.read(
                    seg.offset, min(seg.filesz, _MAX_ATTRIBUTES), "PT_RISCV_ATTRIBUTES"),
                    self.order)
        return {}

    def dynamic(self) -> dict[str, object]:
        """DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH: from the ``SHT_DYNAMIC`` section, or
        the ``PT_DYNAMIC`` segment (strings found through ``DT_STRTAB``) without one."""
        section = next((s for s in self.sections() if s.type == SHT_DYNAMIC), None)
        if section is not None:
            raw = self.data(section, "the dynamic section")
            entries = self._dyn_entries(raw)
            strtab = self.data(self.section(section.link, "the dynamic section"),
                               "the dynamic string table")
        else:
            segment = next((s for s in self.segments() if s.type == PT_DYNAMIC), None)
            if segment is None:
                return {}
            entries = self._dyn_entries(self.src.read(segment.offset, segment.filesz,
                                                      "PT_DYNAMIC"))
            strtab = self._segment_strtab(entries)
        result: dict[str, object] = {"has_dynamic": True}
        needed: list[str] = []
        for tag, value in entries:
            if tag == DT_FLAGS_1:
                result["flags_1"] = value
            elif tag == DT_NEEDED:
                needed.append(_string(strtab, value, "DT_NEEDED"))
            elif tag == DT_SONAME:
                result["soname"] = _string(strtab, value, "DT_SONAME")
            elif tag in (DT_RPATH, DT_RUNPATH):
                text = _string(strtab, value, "DT_RPATH/DT_RUNPATH")
                key = "rpath" if tag == DT_RPATH else "runpath"
                result[key] = tuple(p for p in text.split(":") if p)
        result["needed"] = tuple(needed)
        return result

    def _dyn_entries(self, raw: bytes) -> list[tuple[int, int]]:
        fmt = self.endian + _DYN[self.bits]
        usable = len(raw) - len(raw) % struct.calcsize(fmt)
        entries = []
        for tag, value in struct.iter_unpack(fmt, raw[:usable]):
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        return entries

    def _segment_strtab(self, entries: list[tuple[int, int]]) -> bytes:
        tags = dict(entries)
        if DT_STRTAB not in tags:
            return b""
        address, size = tags[DT_STRTAB], tags.get(DT_STRSZ, 0)
        for seg in self.segments():
            if seg.type == PT_LOAD and seg.vaddr <= address < seg.vaddr + seg.filesz:
                offset = address - seg.vaddr
                return self.src.read(seg.offset + offset, min(size, seg.filesz - offset),
                                     "DT_STRTAB")
        raise ElfUnreadableError("DT_STRTAB points outside every PT_LOAD segment")

    def versions(self) -> dict[str, object]:
        """Symbol versions needed (per library) and defined (``VER_FLG_BASE`` left out)."""
        result: dict[str, object] = {}
        for section in self.sections():
            if section.type == SHT_GNU_VERNEED:
                result["version_needs"] = dict(self._verneed(section))
            elif section.type == SHT_GNU_VERDEF:
                result["version_defs"] = tuple(self._verdef(section))
        return result

    def _verneed(self, section: _Section) -> Iterator[tuple[str, tuple[str, ...]]]:
        raw = self.data(section, ".gnu.version_r")
        strtab = self.data(self.section(section.link, ".gnu.version_r"), "its strings")
        fmt, aux_fmt = self.endian + "HHIII", self.endian + "IHHII"
        pos = 0
        for _ in range(min(section.info, len(raw) // 16)):
            _version, count, file, aux, next_ = struct.unpack_from(fmt, raw, pos)
            names = []
            aux_pos = pos + aux
            for _ in range(min(count, len(raw) // 16)):
                _hash, _flags, _other, name, aux_next = struct.unpack_from(aux_fmt, raw,
                                                                           aux_pos)
                names.append(_string(strtab, name, "a version name"))
                aux_pos += aux_next
            yield _string(strtab, file, "a version file"), tuple(names)
            if not next_:
                break
            pos += next_

    def _verdef(self, section: _Section) -> Iterator[str]:
        raw = self.data(section, ".gnu.version_d")
        strtab = self.data(self.section(section.link, ".gnu.version_d"), "its strings")
        fmt, aux_fmt = self.endian + "HHHHIII", self.endian + "II"
        pos = 0
        for _ in range(min(section.info, len(raw) // 20)):
            _version, flags, _ndx, count, _hash, aux, next_ = struct.unpack_from(fmt, raw,
                                                                               pos)
            if count and not flags & VER_FLG_BASE:
                name, _next = struct.unpack_from(aux_fmt, raw, pos + aux)
                yield _string(strtab, name, "a version name")
            if not next_:
                break
            pos += next_

    def code(self) -> Iterator[CodeRange]:
        """Executable sections (else PF_X segments), each cut to the bytes the file has:
        a header may claim any size."""
        found = False
        for section in self.sections():
            if section.flags & SHF_EXECINSTR and section.type == SHT_PROGBITS:
                found = True
                yield CodeRange(self.section_name(section), section.offset,
                                self._in_file(section.offset, section.size), section.addr)
        if found:
            return
        for n, seg in enumerate(self.segments()):
            if seg.type == PT_LOAD and seg.flags & PF_X:
                yield CodeRange(f"PT_LOAD[{n}]", seg.offset,
                                self._in_file(seg.offset, seg.filesz), seg.vaddr)

    def _in_file(self, offset: int, size: int) -> int:
        return max(0, min(size, self.src.size - offset))

    def symbols(self) -> ElfSymbols:
        """Noted imports (``.dynsym``), and function names, restart addresses and data
        ranges (``.symtab`` if present, else ``.dynsym``)."""
        if self.e_machine != EM_RISCV:
            return ElfSymbols()
        sections = self.sections()
        dynsym = next((s for s in sections if s.type == SHT_DYNSYM), None)
        table = next((s for s in sections if s.type == SHT_SYMTAB), dynsym)
        result: dict[str, object] = {}
        if dynsym is not None:
            syms, strtab = self._table(dynsym)
            names = {_string(strtab, int(n), "a symbol name")
                     for n in syms[syms["shndx"] == 0]["name"].tolist()}
            result["dispatch_imports"] = tuple(sorted(names & DISPATCH_IMPORTS))
            result["imports"] = frozenset(names & NOTED_IMPORTS)
        if table is None:
            return ElfSymbols(**result)  # type: ignore[arg-type]
        import numpy as np

        syms, strtab = self._table(table)
        defined = syms[(syms["shndx"] != 0) & (syms["name"] != 0)]
        if len(defined) and int(defined["name"].max()) >= len(strtab):
            raise ElfUnreadableError("a symbol name lies outside its string table")
        first = np.frombuffer(strtab, dtype=np.uint8)[defined["name"]] if len(defined) \
            else np.zeros(0, dtype=np.uint8)
        mapping_mask = first == ord("$")
        kinds = defined["info"] & 0xF
        # objdump restarts decoding at every named symbol but section, file and mapping ones
        labels = defined[(kinds != _STT_SECTION) & (kinds != _STT_FILE) & ~mapping_mask]
        result["code_symbols"] = tuple(sorted(set(labels["value"].tolist())))
        funcs = labels[(labels["info"] & 0xF) == _STT_FUNC]
        result["symbol_names"] = tuple(_string(strtab, n, "a symbol name")
                                       for n in funcs["name"].tolist())
        mapping = [(value, _string(strtab, name, "a symbol name"))
                   for value, name in zip(defined[mapping_mask]["value"].tolist(),
                                          defined[mapping_mask]["name"].tolist(), strict=True)]
        result["data_ranges"] = _data_ranges(mapping)
        return ElfSymbols(**result)  # type: ignore[arg-type]

    def _table(self, section: _Section) -> tuple[np.ndarray, bytes]:
        import numpy as np

        dtype = np.dtype(_SYM64 if self.bits == 64 else _SYM32)
        if self.endian == ">":
            dtype = dtype.newbyteorder(">")
        data = self.data(section, "a symbol table")
        syms = np.frombuffer(data, dtype=dtype, count=len(data) // dtype.itemsize)
        strtab = self.data(self.section(section.link, "a symbol table"),
                           "a symbol string table")
        return syms, strtab


def _string(table: bytes, offset: int, what: str) -> str:
    if not 0 <= offset < len(table):
        raise ElfUnreadableError(f"{what} lies outside its string table (offset {offset}, "
                                 f"table {len(table)} bytes); the file is corrupt")
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("utf-8", "replace")


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


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if len(text) > 200:
        text = text[:200] + "…"
    return f"cannot read ELF structures ({text}); the file is truncated or corrupt"
