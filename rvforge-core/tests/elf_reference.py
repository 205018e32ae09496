"""The reference ELF reader for the tests: the same facts as :mod:`rvforge.riscv.elf`, read with
pyelftools (a dev dependency) the way rvforge did before it had its own reader.

Tests compare :func:`rvforge.riscv.elf.read_elf`/:func:`~rvforge.riscv.elf.read_symbols` with
:func:`reference` on every ELF file of real trees (Alpine, Debian packages) and on the
compiled fixtures. Loaded by path (``load()``) from tests outside this directory.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
from elftools.elf.constants import P_FLAGS, SH_FLAGS
from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from elftools.elf.sections import Section
from elftools.elf.segments import InterpSegment

from rvforge.riscv.elf import (
    DISPATCH_IMPORTS,
    EM_RISCV,
    NOTED_IMPORTS,
    PT_RISCV_ATTRIBUTES,
    SHT_RISCV_ATTRIBUTES,
    TAG_RISCV_ARCH,
    CodeRange,
    ElfInfo,
    ElfSymbols,
    _data_ranges,
    parse_attributes,
)

_SYM64 = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                   ("value", "<u8"), ("size", "<u8")])
_TAGS = {"TAG_FILE": 1, "TAG_STACK_ALIGN": 4, "TAG_ARCH": 5, "TAG_UNALIGNED": 6,
         "TAG_PRIV_SPEC": 8, "TAG_PRIV_SPEC_MINOR": 10, "TAG_PRIV_SPEC_REVISION": 12,
         "TAG_ATOMIC_ABI": 14, "TAG_X3_REG_USAGE": 16}


def reference(data: bytes) -> tuple[ElfInfo, ElfSymbols]:
    """``data``'s facts as pyelftools reads them (raises whatever pyelftools raises)."""
    elf = ELFFile(io.BytesIO(data))
    header = elf.header
    machine = header["e_machine"]
    e_machine = machine if isinstance(machine, int) else _machine_number(machine)
    base: dict[str, Any] = {
        "e_machine": e_machine, "machine": str(machine), "elf_class": elf.elfclass,
        "e_type": str(header["e_type"]), "e_flags": int(header["e_flags"])}
    if e_machine != EM_RISCV:
        return ElfInfo(**base), ElfSymbols()
    sections = list(elf.iter_sections()) if elf.num_sections() else []
    segments = list(elf.iter_segments())
    attributes = _attributes(elf, sections, segments)
    arch = attributes.get(TAG_RISCV_ARCH)
    interp = None
    for seg in segments:
        if isinstance(seg, InterpSegment):
            interp = seg.get_interp_name()
    info = ElfInfo(**base, arch=arch if isinstance(arch, str) else None,
                   attributes=attributes, interp=interp, **_dynamic(sections, segments),
                   **_versions(sections), code=tuple(_code(sections, segments)))
    return info, _symbols(elf, sections)


def _machine_number(name: str) -> int:
    from elftools.elf.enums import ENUM_E_MACHINE

    return int(ENUM_E_MACHINE.get(name, -1))


def _attributes(elf: ELFFile, sections: list, segments: list) -> dict[int, int | str]:
    for section in sections:
        if section["sh_type"] in (SHT_RISCV_ATTRIBUTES, "SHT_RISCV_ATTRIBUTES"):
            try:
                return {int(a.tag if isinstance(a.tag, int) else _TAGS[a.tag]): a.value
                        for sub in section.iter_subsections()
                        for subsub in sub.iter_subsubsections()
                        for a in subsub.iter_attributes()}
            except Exception:
                return parse_attributes(section.data())
    for seg in segments:
        if seg["p_type"] in (PT_RISCV_ATTRIBUTES, "PT_RISCV_ATTRIBUTES"):
            elf.stream.seek(seg["p_offset"])
            return parse_attributes(elf.stream.read(seg["p_filesz"]))
    return {}


def _dynamic(sections: list, segments: list) -> dict[str, Any]:
    dynamic: DynamicSection | DynamicSegment | None = next(
        (s for s in sections if isinstance(s, DynamicSection)), None)
    if dynamic is None:
        dynamic = next((s for s in segments if isinstance(s, DynamicSegment)), None)
    if dynamic is None:
        return {}
    needed: list[str] = []
    result: dict[str, Any] = {"has_dynamic": True}
    tags: Iterable[Any] = dynamic.iter_tags()  # pyelftools sets .needed, .soname... per tag
    for tag in tags:
        kind = tag.entry.d_tag
        if kind == "DT_FLAGS_1":
            result["flags_1"] = tag.entry.d_val
        elif kind == "DT_NEEDED":
            needed.append(tag.needed)
        elif kind == "DT_SONAME":
            result["soname"] = tag.soname
        elif kind == "DT_RPATH":
            result["rpath"] = tuple(p for p in tag.rpath.split(":") if p)
        elif kind == "DT_RUNPATH":
            result["runpath"] = tuple(p for p in tag.runpath.split(":") if p)
    result["needed"] = tuple(needed)
    return result


def _versions(sections: list) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for section in sections:
        if isinstance(section, GNUVerNeedSection):
            result["version_needs"] = {verneed.name: tuple(aux.name for aux in auxes)
                                       for verneed, auxes in section.iter_versions()}
        elif isinstance(section, GNUVerDefSection):
            defs: list[str] = []
            for verdef, auxes in section.iter_versions():
                if not verdef["vd_flags"] & 1:  # VER_FLG_BASE: the file's own soname
                    defs.extend(aux.name for aux in list(auxes)[:1])
            result["version_defs"] = tuple(defs)
    return result


def _symbols(elf: ELFFile, sections: list) -> ElfSymbols:
    result: dict[str, Any] = {}
    by_name = {s.name: s for s in sections}
    dynsym = by_name.get(".dynsym")
    table = by_name.get(".symtab") or dynsym
    if dynsym is not None:
        syms, strtab = _table(elf, dynsym)
        names = {_name(strtab, int(n)) for n in syms[syms["shndx"] == 0]["name"]}
        result["dispatch_imports"] = tuple(sorted(names & DISPATCH_IMPORTS))
        result["imports"] = frozenset(names & NOTED_IMPORTS)
    if table is None:
        return ElfSymbols(**result)
    syms, strtab = _table(elf, table)
    defined = syms[(syms["shndx"] != 0) & (syms["name"] != 0)]
    kinds = defined["info"] & 0xF
    mapping_mask = np.array([strtab[n:n + 1] == b"$" for n in defined["name"].tolist()],
                            dtype=bool)
    labels = defined[(kinds != 3) & (kinds != 4) & ~mapping_mask]
    result["code_symbols"] = tuple(sorted(set(labels["value"].tolist())))
    funcs = labels[(labels["info"] & 0xF) == 2]
    result["symbol_names"] = tuple(_name(strtab, int(n)) for n in funcs["name"].tolist())
    result["data_ranges"] = _data_ranges([(int(s["value"]), _name(strtab, int(s["name"])))
                                          for s in defined[mapping_mask]])
    return ElfSymbols(**result)


def _table(elf: ELFFile, section: Section) -> tuple[np.ndarray, bytes]:
    data = section.data()
    syms = np.frombuffer(data, dtype=_SYM64, count=len(data) // _SYM64.itemsize)
    return syms, elf.get_section(section["sh_link"]).data()


def _name(strtab: bytes, offset: int) -> str:
    end = strtab.find(b"\0", offset)
    return strtab[offset:end if end >= 0 else len(strtab)].decode("utf-8", "replace")


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
