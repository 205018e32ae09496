"""RISC-V ISA strings, the extensions they imply, and profiles.

Two kinds of text name an ISA:

* the ``Tag_RISCV_arch`` attribute a toolchain writes into every object
  (``rv64i2p1_m2p0_a2p1_f2p2_d2p2_c2p0_v1p0_zicsr2p0_zve64d1p0_zvl128b1p0``), and
* what people and CPUs write (``rv64gc``, ``rv64gcv``, ``rv64imafdc_zba_zbb``, QEMU's
  ``rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc``), or a profile name
  (``rva22u64``, ``rva23s64``).

:func:`parse_isa` reads the first kind and the ISA-string half of the second;
:func:`parse_target` also takes profile names. An :class:`Isa` prints in canonical order
without versions (``rv64imafdc_zicsr_zifencei``) and knows its :meth:`~Isa.closure`: every
extension it implies, following the implication table of GNU binutils (see
:data:`IMPLICATIONS`). What a binary needs that a CPU lacks is
``binary.closure() - cpu.closure()`` (:func:`missing`).

Versions are parsed and kept (``Isa.versioned()`` prints them) but do not take part in the
requirement check: every ratified extension rvforge can meet has one version in practice,
and comparing draft versions would only produce noise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rvforge.errors import UsageError

__all__ = ["Extension", "Isa", "IsaParseError", "implied", "missing", "parse_isa", "parse_target",
           "sort_key", "top_level"]

# -- implications -------------------------------------------------------------------------

IMPLICATIONS: dict[str, tuple[str, ...]] = {
    # GNU binutils 2.44 (Debian trixie), derived from the assembler's own ISA strings by
    # ``python tests/gnu_toolchain.py`` and checked by tests/test_isa_oracle.py: each rule
    # is what ``as -march=rv64i_X`` writes into Tag_RISCV_arch, reduced to direct links.
    "g": ("i", "m", "a", "f", "d", "zicsr", "zifencei"),
    "m": ("zmmul",),
    "a": ("zaamo", "zalrsc"),
    "f": ("zicsr",),
    "d": ("f",),
    "q": ("d",),
    "b": ("zba", "zbb", "zbs"),
    "v": ("zve64d", "zvl128b"),
    "h": ("zicsr",),
    "zicfilp": ("zicsr",),
    "zicfiss": ("zicsr", "zimop"),
    "zicntr": ("zicsr",),
    "zihpm": ("zicsr",),
    "zabha": ("zaamo",),
    "zacas": ("zaamo",),
    "zfa": ("f",),
    "zfbfmin": ("zfhmin",),
    "zfh": ("zfhmin",),
    "zfhmin": ("f",),
    "zfinx": ("zicsr",),
    "zdinx": ("zfinx",),
    "zqinx": ("zdinx",),
    "zcb": ("zca",),
    "zcd": ("d", "zca"),
    "zcf": ("f", "zca"),
    "zcmop": ("zca",),
    "zcmp": ("zca",),
    "zcmt": ("zicsr", "zca"),
    "zk": ("zkn", "zkr", "zkt"),
    "zkn": ("zbkb", "zbkc", "zbkx", "zknd", "zkne", "zknh"),
    "zks": ("zbkb", "zbkc", "zbkx", "zksed", "zksh"),
    "zvbb": ("zvkb",),
    "zve32f": ("f", "zve32x"),
    "zve32x": ("zicsr", "zvl32b"),
    "zve64d": ("d", "zve64f"),
    "zve64f": ("zve32f", "zve64x"),
    "zve64x": ("zve32x", "zvl64b"),
    "zvfbfmin": ("zve32f",),
    "zvfbfwma": ("zfbfmin", "zve32f"),
    "zvfh": ("zfhmin", "zvfhmin"),
    "zvfhmin": ("zve32f",),
    "zvkn": ("zvkb", "zvkned", "zvknhb", "zvkt"),
    "zvknc": ("zvbc", "zvkn"),
    "zvkng": ("zvkg", "zvkn"),
    "zvks": ("zvkb", "zvksed", "zvksh", "zvkt"),
    "zvksc": ("zvbc", "zvks"),
    "zvksg": ("zvkg", "zvks"),
    "zvl1024b": ("zvl512b",),
    "zvl128b": ("zvl64b",),
    "zvl16384b": ("zvl8192b",),
    "zvl2048b": ("zvl1024b",),
    "zvl256b": ("zvl128b",),
    "zvl32768b": ("zvl16384b",),
    "zvl4096b": ("zvl2048b",),
    "zvl512b": ("zvl256b",),
    "zvl64b": ("zvl32b",),
    "zvl65536b": ("zvl32768b",),
    "zvl8192b": ("zvl4096b",),
    "zhinx": ("zhinxmin",),
    "zhinxmin": ("zfinx",),
    "shcounterenw": ("h",),
    "shgatpa": ("h",),
    "shtvala": ("h",),
    "shvsatpa": ("h",),
    "shvstvala": ("h",),
    "shvstvecd": ("h",),
    "smaia": ("ssaia",),
    "smcntrpmf": ("zicsr",),
    "smcsrind": ("sscsrind",),
    "smctr": ("zicsr",),
    "smdbltrp": ("zicsr",),
    "smepmp": ("zicsr",),
    "smstateen": ("ssstateen",),
    "ssaia": ("zicsr",),
    "sscofpmf": ("zicsr",),
    "sscounterenw": ("zicsr",),
    "sscsrind": ("zicsr",),
    "ssctr": ("zicsr",),
    "ssdbltrp": ("zicsr",),
    "ssstateen": ("zicsr",),
    "sstc": ("zicsr",),
    "sstvala": ("zicsr",),
    "sstvecd": ("zicsr",),
    "ssu64xl": ("zicsr",),
    "svade": ("zicsr",),
    "svadu": ("zicsr",),
    "svbare": ("zicsr",),
    "xsfvcp": ("zve32x",),
    "xsfvfnrclipxfqf": ("zve32f",),
    "xsfvqmaccdod": ("zve32x", "zvl128b"),
    "xsfvqmaccqoq": ("zve32x", "zvl256b"),
}
"""Extension ⇒ the extensions it implies (direct links; :func:`implied` follows chains),
exactly as GNU binutils 2.44 closes an ISA string (``riscv_implicit_subsets`` of its
``bfd/elfxx-riscv.c``), so a ``-march=X`` object audited with ``--isa X`` is clean.

Rules binutils does not write into the string but a CPU's abilities follow, applied by
:meth:`Isa.closure` on top (never by :func:`implied`):

* ``i`` below version 2.1 (or, in a target string, with no version) implies ``zicsr``
  and ``zifencei`` (binutils' ``check_implicit_for_i``; ISA spec 2.2 had them in ``I``);
* ``c`` is ``zca``, plus ``zcd`` with ``d`` and, on RV32, ``zcf`` with ``f`` (the Zc*
  chapter of the unprivileged spec; binutils 2.44 writes ``c`` alone), and a CPU with
  those parts runs C code (:meth:`Isa.abilities`); ``zba``, ``zbb`` and ``zbs`` together
  make ``b`` (newer toolchains write ``b``);
* ``i`` runs what ``e`` runs (RV32E/RV64E is I without x16–x31), while ``e`` implies
  nothing: an RVE CPU cannot run an RVI object.
"""

SINGLE_ORDER = "eigmafdqlcbkjtpvnh"
"""Canonical order of single-letter extensions (binutils ``riscv_ext_canonical_order``)."""

_PREFIX_CLASS = (("zxm", 3), ("z", 1), ("s", 2), ("x", 4))

# -- profiles ------------------------------------------------------------------------------

_RVA20U64 = ("i", "m", "a", "f", "d", "c", "zicsr", "zicntr", "ziccif", "ziccrse",
             "ziccamoa", "za128rs", "zicclsm")
_RVA22U64 = ("i", "m", "a", "f", "d", "c", "zicsr", "zicntr", "zihpm", "ziccif", "ziccrse",
             "ziccamoa", "zicclsm", "za64rs", "zihintpause", "zba", "zbb", "zbs", "zic64b",
             "zicbom", "zicbop", "zicboz", "zfhmin", "zkt")
_RVA23U64 = _RVA22U64 + ("v", "zvfhmin", "zvbb", "zvkt", "zihintntl", "zicond", "zimop",
                         "zcmop", "zcb", "zfa", "zawrs", "supm")
_S_MODE = ("zifencei", "svbare", "sv39", "svade", "ssccptr", "sstvecd", "sstvala")
_S22 = _S_MODE + ("sscounterenw", "svpbmt", "svinval")
_S23 = _S22 + ("svnapot", "sstc", "sscofpmf", "ssnpm", "ssu64xl", "h", "ssstateen",
               "shcounterenw", "shvstvala", "shtvala", "shvstvecd", "shvsatpa", "shgatpa")

PROFILES: dict[str, tuple[str, ...]] = {
    # Mandatory extensions only (options are not something a target can be assumed to have),
    # from the RISC-V Profiles specification, github.com/riscv/riscv-profiles: profiles.adoc
    # (RVA20U64/S64, RVA22U64/S64, ratified 2023) and src/rva23-profile.adoc (RVA23U64/S64,
    # RVA23 Profiles v1.0, ratified 2024; it lists B where RVA22 lists Zba, Zbb, Zbs).
    "rva20u64": _RVA20U64 + ("zifencei",),
    "rva20s64": _RVA20U64 + _S_MODE,
    "rva22u64": _RVA22U64 + ("zifencei",),
    "rva22s64": _RVA22U64 + _S22,
    "rva23u64": _RVA23U64 + ("zifencei",),
    "rva23s64": _RVA23U64 + _S23,
}
"""Profile name ⇒ the extensions a CPU meeting it has.

The U-mode profiles do not mandate Zifencei, but every ``rv64gc`` object names it (``g``
expands to it). rvforge audits images for Linux guests, and a CPU that runs Linux is
described by the S-mode profile, which mandates Zifencei; so a ``rvaNNu64`` *target*
includes Zifencei (and ordinary rv64gc binaries are not flagged). Use a plain ISA string
to describe a CPU without it.
"""

U64_PROFILES = ("rva20u64", "rva22u64", "rva23u64")
"""The application profiles an object is placed in (:func:`minimal_profile`), lowest first."""


@dataclass(frozen=True, slots=True)
class Needs:
    """What an object needs of a CPU to run without an illegal instruction.

    :param xlen: 32 or 64.
    :param extensions: extensions it needs, closed under implication.
    :param any_of: instruction classes (from ``--deep``): each is met by any one of its
        extensions (``("zbb", "zbkb")`` for ``ror``).
    """

    xlen: int
    extensions: frozenset[str] = frozenset()
    any_of: frozenset[tuple[str, ...]] = frozenset()

    def lacking(self, cpu: Isa) -> list[str]:
        """What ``cpu`` lacks: extensions, then unmet classes as ``a|b``."""
        have = cpu.abilities()
        lacking = sorted(self.extensions - have, key=sort_key)
        return lacking + sorted("|".join(group) for group in self.any_of
                                if not have.intersection(group))

    def met_by(self, cpu: Isa) -> bool:
        return cpu.xlen == self.xlen and not self.lacking(cpu)

    def __or__(self, other: Needs) -> Needs:
        return Needs(max(self.xlen, other.xlen), self.extensions | other.extensions,
                     self.any_of | other.any_of)

    def names(self) -> list[str]:
        """The needs for people and JSON: top-level extensions, then classes (``a|b``)."""
        groups = [g for g in self.any_of if not self.extensions.intersection(g)]
        return top_level(self.extensions, self.xlen) + sorted("|".join(g) for g in groups)


def minimal_profile(needs: Needs) -> str | None:
    """The lowest of :data:`U64_PROFILES` whose CPUs meet ``needs`` (``None``: none does,
    e.g. an RV32 object or one needing ``zvl256b``)."""
    for name in U64_PROFILES:
        if needs.met_by(parse_target(name)):
            return name
    return None


# -- parsing -------------------------------------------------------------------------------

_BASE = re.compile(r"rv(32|64|128)")
_VERSION = r"([0-9]{1,9})(?:p([0-9]{1,9}))?"  # ASCII and bounded: int() takes any script's digits
_SINGLE = re.compile(r"([a-z])(?:" + _VERSION + r")?")
_MULTI = re.compile(r"([a-z][a-z0-9]*?[a-z])(?:" + _VERSION + r")?")


class IsaParseError(UsageError):
    """Text that is not a RISC-V ISA string or profile name."""


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension of an ISA string: name (lower case) and version if written."""

    name: str
    major: int | None = None
    minor: int | None = None

    def __str__(self) -> str:
        if self.major is None:
            return self.name
        return f"{self.name}{self.major}p{self.minor or 0}"


@dataclass(frozen=True, slots=True)
class Isa:
    """A parsed ISA: XLEN and extensions (``g`` expanded), in canonical order.

    :param xlen: 32, 64 or 128.
    :param extensions: the named extensions, deduplicated, canonically ordered.
    :param profile: the profile name this ISA was expanded from, if any.
    """

    xlen: int
    extensions: tuple[Extension, ...]
    profile: str | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(ext.name for ext in self.extensions)

    def closure(self) -> frozenset[str]:
        """Every extension named or implied (:data:`IMPLICATIONS`, transitively)."""
        return _closure(self.xlen, self.extensions)

    def abilities(self) -> frozenset[str]:
        """What a CPU of this ISA runs: its :meth:`closure`, plus ``c`` when it has all of
        C's parts (``zca``, and ``zcd`` if it has D; on RV32 ``zcf`` if it has F). Only for
        the CPU side: an object that needs ``zca`` alone does not need C."""
        result = self.closure()
        if "c" not in result and "zca" in result and ("d" not in result or "zcd" in result) \
                and (self.xlen != 32 or "f" not in result or "zcf" in result):
            return result | {"c"}
        return result

    def __str__(self) -> str:
        """Canonical form without versions: ``rv64imafdc_zicsr_zifencei``."""
        return _render(self.xlen, [e.name for e in self.extensions])

    def versioned(self) -> str:
        """Canonical form with versions where known, ``_``-separated like an attribute."""
        return f"rv{self.xlen}" + "_".join(str(e) for e in self.extensions)


def parse_isa(text: str) -> Isa:
    """Parse an ISA string (attribute or user form). Raises :class:`IsaParseError`."""
    original = text
    text = text.strip().lower()
    match = _BASE.match(text)
    if not match:
        raise IsaParseError(f"{original!r} is not a RISC-V ISA string: it must start with "
                            "rv32, rv64 or rv128 (e.g. rv64gc) or be a profile "
                            f"({', '.join(PROFILES)})")
    xlen = int(match.group(1))
    rest = text[match.end():]
    if not rest or rest[0] not in "ieg":
        raise IsaParseError(f"{original!r}: the base must be i, e or g right after rv{xlen}")
    found: dict[str, Extension] = {}
    for segment in rest.split("_"):
        if not segment:
            continue
        if segment[0] in "zsx" and len(segment) > 1:
            m = _MULTI.fullmatch(segment)
            if not m:
                raise IsaParseError(f"{original!r}: cannot read extension {segment!r}")
            _add(found, m)
            continue
        pos = 0
        while pos < len(segment):
            m = _SINGLE.match(segment, pos)
            if not m or m.group(1) in "zsx":
                raise IsaParseError(
                    f"{original!r}: cannot read {segment[pos:]!r} (single-letter extensions "
                    "with optional versions like m2p0, then _-separated z/s/x extensions)")
            _add(found, m)
            pos = m.end()
    if "g" in found:
        del found["g"]
        for name in IMPLICATIONS["g"]:
            found.setdefault(name, Extension(name))
    return Isa(xlen, tuple(sorted(found.values(), key=lambda e: sort_key(e.name))))


def parse_target(text: str) -> Isa:
    """A target CPU's ISA from an ISA string or a profile name (``rva23s64``).

    :raises UsageError: (an :class:`IsaParseError`) naming the text when it is neither.
    """
    key = text.strip().lower()
    if key in PROFILES:
        names = PROFILES[key]
        exts = tuple(sorted((Extension(n) for n in dict.fromkeys(names)),
                            key=lambda e: sort_key(e.name)))
        return Isa(64, exts, profile=key)
    return parse_isa(text)


def missing(required: Isa, available: Isa) -> list[str]:
    """Extensions ``required`` implies that ``available`` does not, canonically ordered."""
    return sorted(required.closure() - available.abilities(), key=sort_key)


def top_level(names: Iterable[str], xlen: int = 64) -> list[str]:
    """Of ``names``, those not implied by the others: ``{v, zve64d, zvl128b, ...}`` →
    ``[v]``, ``rv64gc``'s closure → ``[i, m, a, d, c, zifencei]`` (``zcd`` follows from
    ``c`` and ``d`` together). Used to word messages; JSON ``missing`` keeps the full list."""
    kept = sorted(set(names), key=sort_key)
    for name in reversed(kept[:]):  # multi-letter ones first: zcd goes, c and d stay
        others = [Extension(n, 2, 1) for n in kept if n != name]
        if name in _closure(xlen, others):
            kept.remove(name)
    return kept


def sort_key(name: str) -> tuple[int, int, str]:
    """binutils' ``riscv_compare_subsets`` as a key: single letters in
    :data:`SINGLE_ORDER`, then z (by their second letter's order), s, zxm, x extensions."""
    if len(name) == 1:
        index = SINGLE_ORDER.find(name)
        return (0, index if index >= 0 else len(SINGLE_ORDER), name)
    for prefix, klass in _PREFIX_CLASS:
        if name.startswith(prefix):
            second = SINGLE_ORDER.find(name[1]) + 1 if klass == 1 else 0
            return (klass, second, name[1:])
    return (5, 0, name)


def _add(found: dict[str, Extension], m: re.Match[str]) -> None:
    name = m.group(1)
    major = int(m.group(2)) if m.group(2) is not None else None
    minor = int(m.group(3)) if m.group(3) is not None else (0 if major is not None else None)
    found.setdefault(name, Extension(name, major, minor))


def implied(name: str) -> frozenset[str]:
    """``name`` and every extension it implies through :data:`IMPLICATIONS` (the
    toolchain's closure, without the rules :meth:`Isa.closure` adds)."""
    result: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in result:
            result.add(current)
            todo.extend(IMPLICATIONS.get(current, ()))
    return frozenset(result)


def _closure(xlen: int, extensions: Iterable[Extension]) -> frozenset[str]:
    result: set[str] = set()
    for ext in extensions:
        result |= implied(ext.name)
        if ext.name == "i" and (ext.major is None or (ext.major, ext.minor or 0) < (2, 1)):
            result |= implied("zicsr") | implied("zifencei")
    if "i" in result:
        result.add("e")
    if "c" in result:
        result.add("zca")
        if "d" in result:
            result.add("zcd")
        if "f" in result and xlen == 32:
            result.add("zcf")
    if {"zba", "zbb", "zbs"} <= result:
        result.add("b")  # B is exactly these
    return frozenset(result)


def _render(xlen: int, names: Iterable[str]) -> str:
    names = sorted(names, key=sort_key)
    single = "".join(n for n in names if len(n) == 1)
    multi = [n for n in names if len(n) > 1]
    return "_".join([f"rv{xlen}{single}", *multi])
