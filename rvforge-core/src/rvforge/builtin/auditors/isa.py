"""The ``isa`` auditor: can every ELF of the tree run on the target CPU?

Per ELF: the ``Tag_RISCV_arch`` attribute and what ``e_flags`` imply (RVC ⇒ zca, double
float ABI ⇒ d, TSO ⇒ ztso), closed under the binutils implications, minus the CPU's
closure (:func:`rvforge.riscv.isa.missing`). Anything left is an ``isa-required`` error naming
the file, the extensions and the machine profiles that have them — or a warning when the
object shows runtime dispatch (:func:`dispatch_evidence`). With ``--deep`` the executable
code is swept too (:mod:`rvforge.riscv.insn`) and instructions of extensions the CPU lacks
become ``isa-instructions`` findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rvforge.components import Auditor
from rvforge.context import BuildContext
from rvforge.findings import FileRecord, Finding, FindingCode, Severity
from rvforge.machines import Machine
from rvforge.riscv.elf import (
    SETJMP_IMPORTS,
    SIGNAL_IMPORTS,
    ElfInfo,
    ElfSymbols,
    ElfUnreadableError,
)
from rvforge.riscv.isa import (
    U64_PROFILES,
    Extension,
    Isa,
    IsaParseError,
    Needs,
    minimal_profile,
    missing,
    parse_isa,
    parse_target,
    sort_key,
    top_level,
)
from rvforge.tree import Tree

from .scan import CACHE_ENTRIES, ElfFile, RootLibc, elf_files, is_firmware, root_libc

if TYPE_CHECKING:
    from rvforge.riscv.insn import SweepResult

STRAY_THRESHOLD = 8
"""Fewer instructions of an extension than this, with no attribute claiming it, are more
likely data words in the code (OpenSSL keeps constants in ``.text``) than code: a warning,
never an error. Real vector code also always holds a ``vsetvl*``."""

VARIANT_SYMBOL = re.compile(r"rvv|zvl\d+b|_zv[a-z]+|riscv_?vector", re.IGNORECASE)
"""Function names that mark a per-ISA variant (``idamin_k_RISCV64_ZVL128B``,
``Sleef_sinfx_u10rvvm1``, ``foo_rvv``)."""

ELF_MACHINES = {"EM_RISCV": "riscv", "EM_X86_64": "x86-64", "EM_386": "i386",
                "EM_AARCH64": "aarch64", "EM_ARM": "arm"}


@dataclass(frozen=True, slots=True)
class _Requirement:
    """What one (attribute, ``e_flags``, ELF class) combination needs of the CPU.

    :param required: the attribute's ISA plus what ``e_flags`` demand.
    :param unreadable: why the attribute could not be parsed, else ``None``.
    :param lacking: the extensions (closed under implication) the target lacks.
    :param machine: ``riscv64`` or ``riscv32``.
    :param abi: the ``e_flags`` ABI (``lp64d``).
    :param beyond_base: it needs more than RVA20U64 (then whether it dispatches at run
        time decides its profile, and its symbol tables are read).
    """

    required: Isa
    unreadable: str | None
    lacking: tuple[str, ...]
    machine: str
    abi: str
    beyond_base: bool


class IsaAuditor(Auditor):
    """Every ELF's required extensions and ABI against the target machine's CPU."""

    name = "isa"
    summary = "every ELF's ISA attribute, e_flags ABI and (--deep) instructions vs the CPU"
    codes = (
        FindingCode("isa-required",
                    "The ELF's ISA attribute or e_flags require an extension the CPU lacks",
                    "boot a machine that has the extension (--machine), or rebuild the file for "
                    "the CPU (-march=rv64gc)"),
        FindingCode("isa-instructions", "The code holds instructions of an extension the CPU lacks",
                    "check the file selects code at run time, or rebuild it without the extension"),
        FindingCode("isa-vector-ambiguous",
                    "Vector code that is valid RVV 1.0 and XTheadVector alike, on a CPU with "
                    "one of them",
                    "build with an ISA attribute naming v or xtheadvector, or test on the CPU"),
        FindingCode("isa-unknown", "The ELF's ISA attribute cannot be read"),
        FindingCode("abi-mismatch",
                    "The ELF's ABI (float ABI, XLEN) differs from the root's C library",
                    "rebuild with the root's ABI (-mabi=lp64d on Debian and Alpine)"),
        FindingCode("not-riscv", "An ELF file for another architecture",
                    "replace the file with its riscv64 build"),
        FindingCode("elf-unreadable", "A truncated or corrupt ELF file",
                    "reinstall or recopy the file"),
    )
    cache_entries = CACHE_ENTRIES

    def audit(self, tree: Tree, machine: Machine, ctx: BuildContext
              ) -> Iterator[Finding | FileRecord]:
        target = parse_target(machine.isa or "rv64gc")
        files = elf_files(tree, ctx)
        libc = root_libc(tree, files)
        self._required_memo: dict[tuple[str | None, int, int], _Requirement] = {}
        self._holders: dict[frozenset[str], list[str]] = {}
        self._isas: list[tuple[str, Isa]] | None = None
        for elf in files.values():
            yield from self._audit_file(tree, elf, target, machine, libc, ctx)

    def _audit_file(self, tree: Tree, elf: ElfFile, target: Isa, machine: Machine,
                    libc: RootLibc | None, ctx: BuildContext
                    ) -> Iterator[Finding | FileRecord]:
        path = elf.path
        if elf.info is None:
            yield FileRecord(path, {"machine": None, "abi": None, "arch_attribute": None,
                                    "missing": []})
            yield Finding(Severity.ERROR, "elf-unreadable", path,
                          f"{path}: {elf.error}; reinstall the package it comes from")
            return
        info = elf.info
        if not info.is_riscv:
            yield from self._foreign(path, info)
            return
        if info.elf_class != target.xlen:
            yield FileRecord(path, {"machine": f"riscv{info.elf_class}", "abi": info.abi,
                                    "arch_attribute": info.arch, "missing": []})
            yield Finding(Severity.ERROR, "abi-mismatch", path,
                          f"{path} is a {info.elf_class}-bit RISC-V ELF but the target is "
                          f"rv{target.xlen}; replace it with an rv{target.xlen} build")
            return
        need = self._requirement(info, target)
        facts: dict[str, object] = {"machine": need.machine, "abi": need.abi,
                                    "arch_attribute": info.arch, "missing": list(need.lacking)}
        if need.unreadable:
            yield Finding(Severity.WARNING, "isa-unknown", path,
                          f"{path}: cannot read its ISA attribute ({need.unreadable}); only "
                          "e_flags were checked")
        required, lacking = need.required, need.lacking
        symbols: ElfSymbols | None = None
        if lacking or need.beyond_base or ctx.deep:  # only then do the symbol tables matter
            try:
                symbols = elf.symbols()
            except ElfUnreadableError as error:
                yield FileRecord(path, facts)
                yield Finding(Severity.ERROR, "elf-unreadable", path,
                              f"{path}: {error}; reinstall the package it comes from")
                return
        dispatch = dispatch_evidence(info, symbols) if symbols is not None else []
        needs = _attribute_needs(info, required, bool(dispatch))
        if lacking:
            yield self._required_finding(path, list(lacking), dispatch, machine, ctx,
                                         minimal_profile(needs))
        # the loader refuses any object of another float ABI, libraries without DT_NEEDED too
        if libc is not None and libc.abi not in (None, need.abi) and (
                info.dynamic or info.is_library):
            yield self._abi_mismatch(path, need.abi, libc)
        if ctx.deep:
            assert symbols is not None
            result = sweep_file(elf)
            facts["instructions"] = dict(sorted(result.instructions.items(),
                                                key=lambda kv: sort_key(kv[0])))
            facts["undecodable"] = result.undecodable
            if (kind := vector_kind(result, required)):
                facts["vector_code"] = kind
            needs |= instruction_needs(info, symbols, result, required)
            yield from self._instructions(path, info, symbols, result, required, target,
                                          machine, ctx)
        facts["profile"] = minimal_profile(needs)
        facts["requires"] = needs.names()
        yield FileRecord(path, facts)

    @staticmethod
    def _required(info: ElfInfo) -> tuple[Isa, str | None]:
        """The attribute's ISA plus what e_flags demand; and an attribute parse error."""
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

    def _required_finding(self, path: str, lacking: list[str], dispatch: list[str],
                          machine: Machine, ctx: BuildContext, profile: str | None
                          ) -> Finding:
        top = ", ".join(top_level(lacking))
        holders = self._machines_with(lacking, ctx)
        where = (f". Machines that have it: {', '.join(holders)} (--machine NAME)" if holders
                 else ". No known machine profile has it")
        needed = profile_clause(profile, "it")
        details = {"missing": lacking, "machines": holders, "profile": profile}
        if dispatch:
            return Finding(
                Severity.WARNING, "isa-required", path,
                f"{path}: its attribute names {top}, which {machine.name} lacks, but it "
                f"selects code at run time ({', '.join(dispatch)}): it should run, using its "
                "generic code paths", details={**details, "dispatch": dispatch})
        return Finding(
            Severity.ERROR, "isa-required", path,
            f"{path} requires {top}, which {machine.name} ({machine.isa}) lacks: it will "
            f"die with 'illegal instruction'{where}{needed}; or rebuild it for the CPU "
            "(-march)", details=details)

    def _requirement(self, info: ElfInfo, target: Isa) -> _Requirement:
        """What ``info``'s attribute and ``e_flags`` need (memoised per combination: a
        tree holds few distinct ones)."""
        key = (info.arch, info.e_flags, info.elf_class)
        need = self._required_memo.get(key)
        if need is None:
            required, unreadable = self._required(info)
            need = _Requirement(required, unreadable, tuple(missing(required, target)),
                                f"riscv{info.elf_class}", info.abi,
                                bool(missing(required, parse_target(U64_PROFILES[0]))))
            self._required_memo[key] = need
        return need

    @staticmethod
    def _foreign(path: str, info: ElfInfo) -> Iterator[Finding | FileRecord]:
        """A non-RISC-V ELF: an error, or a note for firmware (run by other processors)."""
        arch_name = ELF_MACHINES.get(info.machine, info.machine.removeprefix("EM_").lower())
        yield FileRecord(path, {"machine": arch_name, "abi": None, "arch_attribute": None,
                                "missing": []})
        if is_firmware(path):
            yield Finding(Severity.INFO, "not-riscv", path,
                          f"{path}: {arch_name} firmware (not run by the CPU)")
        else:
            yield Finding(Severity.ERROR, "not-riscv", path,
                          f"{path} is a {arch_name} ELF file, not RISC-V: it was copied "
                          "from the wrong architecture; replace it with a riscv64 build")

    @staticmethod
    def _abi_mismatch(path: str, abi: str, libc: RootLibc) -> Finding:
        return Finding(Severity.ERROR, "abi-mismatch", path,
                       f"{path} uses the {abi} ABI but this root's {libc.flavor} "
                       f"({libc.loader}) is {libc.abi}: the loader refuses it; rebuild it "
                       f"with -mabi={libc.abi}", details={"abi": abi, "root_abi": libc.abi})

    def _instructions(self, path: str, info: ElfInfo, symbols: ElfSymbols,
                      result: SweepResult, required: Isa, target: Isa, machine: Machine,
                      ctx: BuildContext) -> Iterator[Finding]:
        """One finding per file for instructions of extensions the CPU lacks and the
        attribute does not claim (those claimed are already ``isa-required``)."""
        real, stray = unclaimed_instructions(result, required, target)
        doubtful = ambiguous_vector(result, required, target)
        if doubtful:
            has = "XTheadVector (RVV 0.7.1)" if "xtheadvector" in target.abilities() \
                else "RVV 1.0 (v)"
            yield Finding(Severity.WARNING, "isa-vector-ambiguous", path,
                          f"{path}: its {doubtful} vector instructions are all valid both as "
                          f"RVV 1.0 (v) and as XTheadVector (RVV 0.7.1), which mean different "
                          f"things, and its attribute names neither: {machine.name} has only "
                          f"{has}, so whether it runs there cannot be told; rebuild with the "
                          "attribute (-march=..._v or ..._xtheadvector) or check it on the "
                          "CPU", details={"instructions": doubtful})
        if stray:
            listed = ", ".join(f"{_spoken(ext)} ×{n}" for ext, n in stray.items())
            yield Finding(Severity.INFO, "isa-instructions", path,
                          f"{path}: a few words decode as {listed}: most likely data in the "
                          "code", details={"instructions": stray, "stray": True})
        if not real:
            return
        listed = ", ".join(f"{_spoken(ext)} ×{n}" for ext, n in real.items())
        dispatch = dispatch_evidence(info, symbols, instructions=True)
        holders = self._machines_with(list(real), ctx)
        details = {"instructions": real, "dispatch": dispatch, "machines": holders}
        if dispatch:
            yield Finding(Severity.WARNING, "isa-instructions", path,
                          f"{path} holds instructions of {listed}, which {machine.name} "
                          f"lacks, but selects code at run time ({', '.join(dispatch)}) and "
                          "its attribute does not require them: it should run, using its "
                          "generic code paths", details=details)
        else:
            from rvforge.riscv.insn import providers

            where = f"machines that have them: {', '.join(holders)}" if holders else \
                "no known machine profile has them all"
            profile = minimal_profile(Needs(info.elf_class, required.closure(), frozenset(
                providers(name) for name in real)))
            yield Finding(Severity.ERROR, "isa-instructions", path,
                          f"{path} executes instructions of {listed} (its attribute does not "
                          f"say so) and {machine.name} lacks them; {where}"
                          f"{profile_clause(profile, 'them')}",
                          details={**details, "profile": profile})

    def _machines_with(self, extensions: list[str], ctx: BuildContext) -> list[str]:
        """Names of registered machine profiles whose CPU has all of ``extensions`` (an
        instruction class ``a|b`` is met by either)."""
        from rvforge.riscv.insn import providers

        key = frozenset(extensions)
        if key not in self._holders:
            if self._isas is None:
                self._isas = machine_isas(ctx)
            self._holders[key] = [
                name for name, isa in self._isas
                if all(any(p in isa.abilities() for p in providers(e)) for e in key)]
        return self._holders[key]


DOMINANCE = 4
"""Words of one vector extension's own encodings must outnumber the other's this many
times for the code to be taken as that extension's (else both classes are reported)."""

VECTORS = ("v", "xtheadvector")
"""RVV 1.0 and T-Head's RVV 0.7.1: many words are instructions of both, with other
meanings (``vtype``'s layout, load widths), so a CPU with one does not run the other."""


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


def _attribute_needs(info: ElfInfo, required: Isa, dispatches: bool) -> Needs:
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
    required, _ = IsaAuditor._required(elf.info)
    base = parse_target(U64_PROFILES[0])
    symbols = elf.symbols() if deep or missing(required, base) else None
    dispatch = dispatch_evidence(elf.info, symbols) if symbols is not None else []
    needs = _attribute_needs(elf.info, required, bool(dispatch))
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


def profile_clause(profile: str | None, it: str) -> str:
    """The RVA profile part of a message, after the machines: ``; of the RVA profiles,
    rva23u64 is the first with it`` (a CPU need not meet a whole profile to run it)."""
    if profile is None:
        return f"; no RVA profile up to {U64_PROFILES[-1]} includes {it}"
    return f"; of the RVA profiles, {profile} is the first with {it}"


def _spoken(name: str) -> str:
    """An instruction class for a message: ``zbb|zbkb`` → ``zbb or zbkb``."""
    return name.replace("|", " or ")


def machine_isas(ctx: BuildContext, *, bootable: bool = False) -> list[tuple[str, Isa]]:
    """Every registered machine profile's name and CPU ISA (its launcher says which, for
    profiles that have one); profiles whose ISA cannot be worked out (a QEMU here lacks
    the CPU) are left out, and with ``bootable`` those without a launcher here or whose
    CPU the launcher's tool here cannot run."""
    result = []
    for reg in ctx.registry.machines:
        machine = reg.component
        text = machine.isa
        if bootable and machine.launcher not in ctx.registry.launchers:
            continue
        try:
            if machine.launcher and machine.launcher in ctx.registry.launchers:
                launcher = ctx.registry.launchers.get(machine.launcher)()
                text = launcher.machine_isa(machine, ctx)
                if bootable:  # a board's CPU string may be more than this QEMU takes
                    launcher.host_tool(machine, ctx)
            result.append((reg.name, parse_target(text)))
        except Exception:
            continue
    return result


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
