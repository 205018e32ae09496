"""``rvforge audit``: check trees, archives, ELF files and packages against a target CPU.

Several paths make one report. A package (wheel or other zip, ``.deb``, ``.apk``) is read
in memory and only its CPU is audited (the ``isa`` auditor: a package is no root
filesystem, so nothing can be linked against); a wheel tagged ``manylinux_*_riscv64`` or
``musllinux_*_riscv64`` is audited against that tag's baseline, RVA20U64 (RV64GC), unless
``--machine`` or ``--isa`` names a target. Each package's report says the lowest profile
that runs all of it and the machines here whose CPU does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rvforge.cli.common import command_context, handle_errors
from rvforge.cli.reporting import (
    FORMATS,
    counted,
    escaped,
    render,
    to_json,
    to_sarif,
    to_text,
)
from rvforge.context import BuildContext
from rvforge.errors import ExitCode, UsageError
from rvforge.machines import AUTO_MACHINE, Machine
from rvforge.registry import Registry
from rvforge.riscv.isa import U64_PROFILES, Extension, Isa, Needs

if TYPE_CHECKING:
    from rvforge.formats.packages import Package
    from rvforge.pipeline import AuditReport

WHEEL_BASELINE = "rva20u64"
"""What PyPI's riscv64 platform tags promise (manylinux and musllinux: RV64GC)."""
WHEEL_TAGS = ("manylinux", "musllinux")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


@dataclass
class AuditedInput:
    """One path of the command line and its report.

    :param path: as given.
    :param kind: ``tree`` for directories, tarballs, cpio archives and ELF files, else the
        package kind (``wheel``, ``zip``, ``deb``, ``apk``).
    :param report: the audit of its tree.
    :param package: the package read, for packages.
    :param machines: names of the machine profiles here whose CPU runs all of it.
    """

    path: Path
    kind: str
    report: AuditReport
    package: Package | None = None
    machines: tuple[str, ...] = ()

    @property
    def profile(self) -> str | None:
        """The lowest profile that runs every RISC-V ELF of it (``None``: none does)."""
        profiles = [facts.get("profile") for facts in self.report.files.values()
                    if "profile" in facts]
        if None in profiles:
            return None
        return max(profiles, key=U64_PROFILES.index, default=U64_PROFILES[0])

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind,
                "platforms": list(self.package.platforms) if self.package else [],
                "target": {"machine": self.report.machine.name,
                           "isa": self.report.machine.isa},
                "profile": self.profile, "machines": list(self.machines),
                "summary": {"files": len(self.report.files),
                            "errors": len(self.report.errors),
                            "warnings": len(self.report.warnings)}}


@handle_errors
def audit(
    paths: Annotated[list[Path], typer.Argument(
        help="Directories, tarballs, cpio archives (any compression), ELF files or packages "
             "(.whl, .zip, .deb, .apk); several make one report.")],
    machine: Annotated[str | None, typer.Option(
        help="Target machine profile; several, comma-separated (A,B,C), give one row "
             "each.")] = None,
    isa: Annotated[str | None, typer.Option(help="Target ISA or profile instead of a "
                                            "machine's (rv64gc, rv64gcv, rva23u64).")] = None,
    deep: Annotated[bool, typer.Option(help="Also sweep executable code for "
                                       "instructions.")] = False,
    format: Annotated[str, typer.Option("--format", help="text, json or sarif.")] = "text",
    auditor: Annotated[list[str] | None, typer.Option(
        help="Run only this auditor (repeatable; default: all, for packages isa).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config file (for [machines.*]).")]
    = None,
) -> None:
    """Audit every ELF in PATHS against the target CPU; exit 3 when errors are found.

    A wheel tagged manylinux_*_riscv64 or musllinux_*_riscv64 is audited against its
    tag's baseline (rva20u64, i.e. RV64GC) unless --machine or --isa is given.
    """
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if machine and isa:
        raise UsageError("--machine and --isa exclude each other")
    with command_context(config, deep=deep) as (_, ctx):
        registry = ctx.registry
        if machine and "," in machine:
            rows = _matrix(registry, paths, machine, ctx, auditor)
            typer.echo(_render_matrix(rows, format), nl=False)
            if any(row.errors for row in rows):
                raise typer.Exit(int(ExitCode.AUDIT))
            return
        chosen = registry.resolve_machine(machine, isa, ctx) if machine or isa else None
        inputs = [_audit_one(registry, path, chosen, ctx, auditor) for path in paths]
        if any(i.package is not None for i in inputs) or len(inputs) > 1:
            _add_machines(inputs, ctx)
        typer.echo(_render(inputs, format, deep), nl=False)
    if any(i.report.errors for i in inputs):
        raise typer.Exit(int(ExitCode.AUDIT))


def _audit_one(registry: Registry, path: Path, chosen: Machine | None, ctx: BuildContext,
               auditors: list[str] | None) -> AuditedInput:
    # the audit's modules: only for this command, not at every command's start
    from rvforge import pipeline
    from rvforge.auto_machine import machine_for_tree
    from rvforge.formats.packages import Package
    from rvforge.loading import load_input

    loaded = load_input(path, ctx)
    if chosen is not None and chosen.name == AUTO_MACHINE:  # per input: what it needs
        chosen = machine_for_tree(loaded.tree if isinstance(loaded, Package) else loaded,
                                  registry, ctx)
    if isinstance(loaded, Package):
        target = chosen or wheel_baseline(loaded) or registry.resolve_machine(None, None, ctx)
        report = pipeline.audit(registry, loaded.tree, target, ctx, auditors or ["isa"])
        return AuditedInput(path, loaded.kind, report, loaded)
    target = chosen or registry.resolve_machine(None, None, ctx)
    return AuditedInput(path, "tree", pipeline.audit(registry, loaded, target, ctx, auditors))


@dataclass
class MachineRow:
    """One machine of ``--machine A,B,C``: its resolved profile (or why it has none here)
    and the audits of every input against it."""

    name: str
    machine: Machine | None
    inputs: list[AuditedInput]
    unavailable: str = ""

    @property
    def errors(self) -> int:
        return sum(len(i.report.errors) for i in self.inputs)

    @property
    def warnings(self) -> int:
        return sum(len(i.report.warnings) for i in self.inputs)

    @property
    def status(self) -> str:
        return "unavailable" if self.unavailable else "FAIL" if self.errors else "ok"

    def first(self) -> str:
        """The first error (else warning) message, or why the machine is unavailable."""
        if self.unavailable:
            return self.unavailable
        for severity in ("errors", "warnings"):
            for item in self.inputs:
                found = getattr(item.report, severity)
                if found:
                    return str(found[0].message)
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.name, "isa": self.machine.isa if self.machine else None,
                "status": self.status, "errors": self.errors, "warnings": self.warnings,
                "first_finding": self.first() or None,
                "findings": [{**f.to_json(), "input": str(i.path)} for i in self.inputs
                             for f in i.report.sorted_findings()]}


def _matrix(registry: Registry, paths: list[Path], machines: str, ctx: BuildContext,
            auditors: list[str] | None) -> list[MachineRow]:
    """Every input audited against each machine of ``A,B,C`` (a profile this host cannot
    resolve is a row saying why)."""
    from rvforge.errors import RvforgeError

    names = [n.strip() for n in machines.split(",") if n.strip()]
    rows = []
    for name in dict.fromkeys(names):
        try:
            resolved = registry.resolve_machine(name, None, ctx)
        except RvforgeError as error:
            if name not in registry.machines:
                raise
            rows.append(MachineRow(name, None, [], str(error)))
            continue
        rows.append(MachineRow(name, resolved, [_audit_one(registry, path, resolved, ctx,
                                                           auditors) for path in paths]))
    return rows


def _render_matrix(rows: list[MachineRow], fmt: str) -> str:
    """One row per machine (text), or ``{"machines": [...]}`` (JSON)."""
    if fmt != "text":
        if fmt != "json":
            raise UsageError("--machine A,B,C gives text or json (--format), not sarif")
        return json.dumps({"machines": [row.to_json() for row in rows]}, indent=2) + "\n"
    width = max(len(row.name) for row in rows)
    lines = [f"{'machine':<{width}}  {'status':<11}  errors  first finding"]
    for row in rows:
        lines.append(f"{row.name:<{width}}  {row.status:<11}  {row.errors:>6}  "
                     f"{escaped(row.first()) or '-'}")
    failed = sum(1 for row in rows if row.errors)
    lines.append(f"{'FAIL' if failed else 'ok'}: {counted(len(rows), 'machine')}, "
                 f"{failed} with errors")
    return "\n".join(lines) + "\n"


def wheel_baseline(package: Package) -> Machine | None:
    """The target a wheel's riscv64 platform tag promises (``None``: no such tag)."""
    for tag in package.platforms:
        if tag.startswith(WHEEL_TAGS) and tag.endswith("_riscv64"):
            return Machine(tag, "", WHEEL_BASELINE,
                           summary=f"the baseline of the {tag} platform tag (RV64GC)")
    return None


def _add_machines(inputs: list[AuditedInput], ctx: BuildContext) -> None:
    """Fill in, per input, the machine profiles here that boot a CPU meeting what all its
    ELFs need."""
    from rvforge.builtin.auditors.isa import machine_isas

    isas = machine_isas(ctx, bootable=True)
    for item in inputs:
        needs = [_needs(facts) for facts in item.report.files.values() if "requires" in facts]
        if not needs:
            continue
        total = needs[0]
        for more in needs[1:]:
            total |= more
        item.machines = tuple(name for name, cpu in isas if total.met_by(cpu))


def _needs(facts: dict[str, Any]) -> Needs:
    """A file record's needs back from its ``requires`` names (``a|b``: either)."""
    xlen = 32 if facts.get("machine") == "riscv32" else 64
    names = [n for n in facts["requires"] if "|" not in n]
    groups = frozenset(tuple(n.split("|")) for n in facts["requires"] if "|" in n)
    closure = Isa(xlen, tuple(Extension(n, 2, 1) for n in names)).closure()
    return Needs(xlen, closure, groups)


def _render(inputs: list[AuditedInput], fmt: str, deep: bool) -> str:
    """One report: as before for a single tree; with packages or several inputs, a
    section per input (text), ``inputs`` plus ``input`` on every file and finding (JSON),
    a run per input (SARIF)."""
    if len(inputs) == 1 and inputs[0].package is None:
        return render(inputs[0].report, fmt, deep=deep)
    if fmt == "json":
        return json.dumps(_json(inputs, deep), indent=2) + "\n"
    if fmt == "sarif":
        runs = []
        for item in inputs:
            run = to_sarif(item.report)["runs"][0]
            run["properties"]["input"] = str(item.path)
            runs.append(run)
        sarif = to_sarif(inputs[0].report)
        sarif["runs"] = runs
        return json.dumps(sarif, indent=2) + "\n"
    return _text(inputs)


def _json(inputs: list[AuditedInput], deep: bool) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for item in inputs:
        data = to_json(item.report, deep=deep)
        files += [{**entry, "input": str(item.path)} for entry in data["files"]]
        findings += [{**entry, "input": str(item.path)} for entry in data["findings"]]
    first = inputs[0].report.machine
    return {"target": {"machine": first.name, "isa": first.isa},
            "inputs": [item.to_json() for item in inputs], "files": files,
            "findings": findings,
            "summary": {"inputs": len(inputs), "files": len(files),
                        "errors": sum(len(i.report.errors) for i in inputs),
                        "warnings": sum(len(i.report.warnings) for i in inputs)}}


def _text(inputs: list[AuditedInput]) -> str:
    sections = []
    for item in inputs:
        head = f"{item.path} ({_described(item)})"
        profile = item.profile or f"none up to {U64_PROFILES[-1]}"
        machines = ", ".join(item.machines) or "none"
        runs = (f"  lowest profile that runs all of it: {profile}; machines here that boot "
                f"it: {machines}") if item.report.files else "  no ELF files"
        sections.append(f"{head}\n{runs}\n{to_text(item.report)}")
    if len(inputs) > 1:
        errors = sum(len(i.report.errors) for i in inputs)
        warnings = sum(len(i.report.warnings) for i in inputs)
        files = sum(len(i.report.files) for i in inputs)
        sections.append(f"{'FAIL' if errors else 'ok'}: {counted(len(inputs), 'input')}, "
                        f"{counted(files, 'ELF file')}: {counted(errors, 'error')}, "
                        f"{counted(warnings, 'warning')}\n")
    return "\n".join(sections)


def _described(item: AuditedInput) -> str:
    if item.package is None:
        return "tree"
    tags = [t for t in item.package.platforms if t.endswith("_riscv64")]
    what = f"{item.kind}, {item.package.members} files"
    if item.kind == "wheel" and tags:
        what += f", {tags[0]}: baseline {WHEEL_BASELINE}"
    return what
