"""What a tree's ELF files need of the CPU: the ISA-needs analysis the ``isa`` auditor and
``--machine auto`` share.

Per object: the ``Tag_RISCV_arch`` attribute and what ``e_flags`` imply
(:func:`required_isa`), closed under the binutils implications; for an object that selects
code at run time (:func:`dispatch_evidence`) only what RVA20U64 has of it; and with ``deep``
the instructions of its executable code (:func:`sweep_file`) its attribute does not claim
(vector code told apart as RVV 1.0 or XTheadVector, :func:`vector_kind`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rvforge.riscv.elf import (
    SETJMP_IMPORTS,
    SIGNAL_IMPORTS,
    ElfInfo,
    ElfSymbols,
    ElfUnreadableError,
)
from rvforge.riscv.elf_files import ElfFile, elf_files
from rvforge.riscv.isa import (
    U64_PROFILES,
    Extension,
    Isa,
    IsaParseError,
    Needs,
    missing,
    parse_isa,
    parse_target,
    sort_key,
)

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.riscv.insn import SweepResult
    from rvforge.tree import Tree

__all__ = ["DOMINANCE", "STRAY_THRESHOLD", "VARIANT_SYMBOL", "VECTORS", "ambiguous_vector",
           "attribute_needs", "dispatch_evidence", "elf_needs", "instruction_needs",
           "required_isa", "sweep_file", "tree_needs", "unclaimed_instructions",
           "vector_kind"]

STRAY_THRESHOLD = 8
"""Fewer instructions of an extension than this, with no attribute claiming it, are more
likely data words in the code (OpenSSL keeps constants in ``.text``) than code: a warning,
never an error. Real vector code also always holds a ``vsetvl*``."""


VARIANT_SYMBOL = re.compile(r"rvv|zvl[0-9]+b|_zv[a-z]+|riscv_?vector", re.IGNORECASE)
"""Function names that mark a per-ISA variant (``idamin_k_RISCV64_ZVL128B``,
``Sleef_sinfx_u10rvvm1``, ``foo_rvv``)."""


DOMINANCE = 4
"""Words of one vector extension's own encodings must outnumber the other's this many
times for the code to be taken as that extension's (else both classes are reported)."""


VECTORS = ("v", "xtheadvector")
"""RVV 1.0 and T-Head's RVV 0.7.1: many words are instructions of both, with other
meanings (``vtype``'s layout, load widths), so a CPU with one does not run the other."""



def required_isa(info: ElfInfo) -> tuple[Isa, str | None]:
    """What ``info``'s attribute and ``e_flags`` require (RVC ⇒ zca, double float ABI ⇒ d, TSO
    ⇒ ztso), and why the attribute could not be parsed (else ``None``)."""
    found = {"i": Extension("i", 2, 1)}  # flags alone imply no zicsr/zifencei
    error = None
    if info.arch:
        try:
            found = {e.name: e for e in parse_isa(info.arch).extensions}
        except IsaParseError as exc:
            error = str(exc)
    flags = ["zca"] if info.rvc else []  # binutils sets EF_RISCV_RVC for Zca alone
    flags += {"single": ["f"], "double": ["d"], "quad": ["q"]}.get(info.float_abi, [])
    flags += ["ztso"] if info.tso else []
    for name in flags:
        found.setdefault(name, Extension(name))
    exts = tuple(sorted(found.values(), key=lambda e: sort_key(e.name)))
    return Isa(info.elf_class, exts), error


def vector_kind(result: SweepResult, required: Isa) -> str:
    """Which vector extension the code's vector words are: the one the attribute names,
    else the one whose own encodings appear (:func:`rvforge.riscv.insn.vector_only`, the
    ``xtheadvector`` class); ``ambiguous`` when every word is both, ``""`` for none."""
    closure = required.closure()
    named = [ext for ext in VECTORS if ext in closure or (ext == "v" and "zve32x" in closure)]
    if len(named) == 1:
        return named[0]
    thead, only = result.instructions.get("xtheadvector", 0), result.vector_only
    # no real instruction of one is the other's own: a few of the other's are data words
    if thead >= STRAY_THRESHOLD and thead >= DOMINANCE * only:
        return "xtheadvector"
    if only and (thead < STRAY_THRESHOLD or only >= DOMINANCE * thead):
        return "v"
    if result.instructions.get("v", 0) >= STRAY_THRESHOLD and result.has_vsetvl and not thead:
        return "ambiguous"
    return ""


def _read_as(result: SweepResult, required: Isa) -> dict[str, int]:
    """The instruction counts with the vector words given to the extension they are
    (:func:`vector_kind`): in 0.7.1 code the words both share are XTheadVector's."""
    counts = dict(result.instructions)
    if vector_kind(result, required) == "xtheadvector" and "v" in counts:
        counts["xtheadvector"] = counts.get("xtheadvector", 0) + counts.pop("v")
    return counts


def ambiguous_vector(result: SweepResult, required: Isa, cpu: Isa) -> int:
    """The vector words of code that is only ambiguous (every word RVV 1.0 and XTheadVector
    alike) when ``cpu`` has just one of the two: whether it runs cannot be told (0: no
    such doubt)."""
    have = cpu.abilities()
    if vector_kind(result, required) != "ambiguous" or ("v" in have) == (
            "xtheadvector" in have):
        return 0
    return result.instructions.get("v", 0)


def unclaimed_instructions(result: SweepResult, required: Isa, cpu: Isa | None = None
                           ) -> tuple[dict[str, int], dict[str, int]]:
    """The instruction classes of ``result`` that neither the attribute (``required``) nor
    ``cpu`` provides, split into real code and stray matches (data words in the code).
    Ambiguous vector code on a CPU with XTheadVector is left to :func:`ambiguous_vector`."""
    from rvforge.riscv.insn import providers

    have = required.closure() | (cpu.abilities() if cpu is not None else frozenset())
    if cpu is not None and ambiguous_vector(result, required, cpu):
        have |= {"v"}
    real: dict[str, int] = {}
    stray: dict[str, int] = {}
    for name, count in sorted(_read_as(result, required).items(),
                              key=lambda kv: sort_key(kv[0])):
        if any(ext in have for ext in providers(name)):
            continue  # an instruction two extensions define runs on a CPU with either
        is_stray = count < STRAY_THRESHOLD or (name in VECTORS and not result.has_vsetvl)
        (stray if is_stray else real)[name] = count
    return real, stray


def instruction_needs(info: ElfInfo, symbols: ElfSymbols, result: SweepResult,
                      required: Isa) -> Needs:
    """What the code's instructions add to the attribute's needs: the real classes it
    does not claim, unless the object selects code at run time."""
    from rvforge.riscv.insn import providers

    real, _ = unclaimed_instructions(result, required)
    if not real or dispatch_evidence(info, symbols, instructions=True):
        return Needs(info.elf_class)
    return Needs(info.elf_class, any_of=frozenset(providers(name) for name in real))


def attribute_needs(info: ElfInfo, required: Isa, dispatches: bool) -> Needs:
    """What the attribute and ``e_flags`` make an object need: all of it, or for one that
    selects code at run time only what RVA20U64 has of it (its generic code paths)."""
    closure = required.closure()
    if dispatches:
        closure &= parse_target(U64_PROFILES[0]).abilities()
    return Needs(info.elf_class, closure)


def elf_needs(elf: ElfFile, *, deep: bool = False) -> Needs | None:
    """What one ELF file of a tree needs of the CPU (``None``: not a readable RISC-V ELF),
    as the audit decides it: its attribute and ``e_flags`` (only what RVA20U64 has of them
    when it selects code at run time) and, with ``deep``, the instructions its attribute
    does not claim. Raises
    :class:`~rvforge.riscv.elf.ElfUnreadableError` for corrupt symbol tables."""
    if elf.info is None or not elf.info.is_riscv:
        return None
    required, _ = required_isa(elf.info)
    base = parse_target(U64_PROFILES[0])
    symbols = elf.symbols() if deep or missing(required, base) else None
    dispatch = dispatch_evidence(elf.info, symbols) if symbols is not None else []
    needs = attribute_needs(elf.info, required, bool(dispatch))
    if deep:
        assert symbols is not None
        needs |= instruction_needs(elf.info, symbols, sweep_file(elf), required)
    return needs


def tree_needs(tree: Tree, ctx: BuildContext | None = None, *, deep: bool = False
               ) -> dict[str, Needs]:
    """:func:`elf_needs` of every readable RISC-V ELF file of ``tree``, by path. Union
    them (``a | b``) for what the whole tree needs; :meth:`Needs.met_by` tells whether a
    CPU runs it, :func:`~rvforge.riscv.isa.minimal_profile` the lowest profile that does."""
    found = {}
    for path, elf in elf_files(tree, ctx).items():
        try:
            needs = elf_needs(elf, deep=deep)
        except ElfUnreadableError:
            continue
        if needs is not None:
            found[path] = needs
    return found


def dispatch_evidence(info: ElfInfo, symbols: ElfSymbols, *, instructions: bool = False
                      ) -> list[str]:
    """Why the object (``info``, ``symbols``) looks like it picks code paths at run time
    (empty: it does not).

    Evidence is a way to ask the CPU — an import of ``getauxval`` or ``__riscv_hwprobe``,
    or of ``signal``/``sigaction`` with ``sigsetjmp`` (probing by catching SIGILL, as
    SLEEF does) — *and* per-ISA code paths: function names that mark variants, or, for a
    shared library, whose attribute merges every object linked in (OpenBLAS, pixman),
    the library itself. For instructions the attribute does not claim
    (``instructions=True``; such code comes from assembly that enabled the extension for
    itself, as OpenSSL's does) an import of ``syscall`` also counts as a way to ask:
    OpenSSL calls the ``riscv_hwprobe`` system call through it.
    """
    asks = list(symbols.dispatch_imports)
    if symbols.imports & SIGNAL_IMPORTS and symbols.imports & SETJMP_IMPORTS:
        asks.append("SIGILL probing (signal, sigsetjmp)")
    if instructions and "syscall" in symbols.imports:
        asks.append("syscall (riscv_hwprobe)")
    if not asks:
        return []
    variants = [name for name in symbols.symbol_names if VARIANT_SYMBOL.search(name)]
    if variants:
        return [*asks, f"per-ISA functions such as {variants[0]}"]
    if instructions or (info.e_type == "ET_DYN" and info.soname and info.interp is None):
        return asks
    return []


def sweep_file(elf: ElfFile) -> SweepResult:
    """Sweep every executable section (or PF_X segment) of ``elf``; raises
    :class:`~rvforge.riscv.elf.ElfUnreadableError` when its symbol tables are corrupt."""
    from rvforge.riscv.insn import SweepResult, sweep  # numpy: only --deep pays for it

    assert elf.info is not None and elf.entry.content is not None
    symbols = elf.symbols()
    total = SweepResult()
    with elf.entry.content.open() as stream:
        for code in elf.info.code:
            stream.seek(code.offset)
            data = stream.read(code.size)
            total.merge(sweep(data, code.address, symbols.code_symbols,
                              symbols.data_ranges))
    return total
