"""The ``isa`` auditor: can every ELF of the tree run on the target CPU?

Per ELF: the ``Tag_RISCV_arch`` attribute and what ``e_flags`` imply (RVC ⇒ zca, double
float ABI ⇒ d, TSO ⇒ ztso), closed under the binutils implications, minus the CPU's
closure (:func:`rvforge.riscv.isa.missing`). Anything left is an ``isa-required`` error naming
the file, the extensions and the machine profiles that have them — or a warning when the
object shows runtime dispatch. What a file needs is :mod:`rvforge.riscv.needs`'s analysis,
which ``--machine auto`` shares. With ``--deep`` the executable code is swept too
(:mod:`rvforge.riscv.insn`) and instructions of extensions the CPU lacks
become ``isa-instructions`` findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rvforge.components import Auditor
from rvforge.context import BuildContext
from rvforge.findings import FileRecord, Finding, FindingCode, Severity
from rvforge.machines import Machine
from rvforge.riscv.elf import (
    ElfInfo,
    ElfSymbols,
    ElfUnreadableError,
)
from rvforge.riscv.elf_files import (
    CACHE_ENTRIES,
    ElfFile,
    RootLibc,
    elf_files,
    is_firmware,
    root_libc,
)
from rvforge.riscv.isa import (
    U64_PROFILES,
    Isa,
    Needs,
    minimal_profile,
    missing,
    parse_target,
    sort_key,
    top_level,
)
from rvforge.riscv.needs import (
    ambiguous_vector,
    attribute_needs,
    dispatch_evidence,
    instruction_needs,
    required_isa,
    sweep_file,
    tree_needs,
    unclaimed_instructions,
    vector_kind,
)
from rvforge.tree import Tree

if TYPE_CHECKING:
    from rvforge.riscv.insn import SweepResult

# the ISA-needs analysis moved to rvforge.riscv.needs in 0.3; importable from here for one release
__all__ = ["IsaAuditor", "dispatch_evidence", "machine_isas", "sweep_file", "tree_needs"]


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
        needs = attribute_needs(info, required, bool(dispatch))
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
            required, unreadable = required_isa(info)
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


