"""Rendering audit reports: text for people, JSON for scripts, SARIF for code scanning.

The JSON and SARIF schemas are documented in ``docs/audit.md``.
"""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

from rvforge.findings import Finding, Severity
from rvforge.pipeline import AuditReport

FORMATS = ("text", "json", "sarif")

FILE_KEYS = ("path", "machine", "abi", "arch_attribute", "missing")
"""Keys every entry of the JSON ``files`` list has (``instructions`` too with --deep)."""

RULES: dict[str, str] = {
    "isa-required": "The ELF's ISA attribute or e_flags require an extension the CPU lacks",
    "isa-instructions": "The code holds instructions of an extension the CPU lacks",
    "isa-unknown": "The ELF's ISA attribute cannot be read",
    "abi-mismatch": "The ELF's ABI (float ABI, XLEN) differs from the root's C library",
    "not-riscv": "An ELF file for another architecture",
    "elf-unreadable": "A truncated or corrupt ELF file",
    "interp-missing": "The program's dynamic loader (PT_INTERP) is not in the tree",
    "needed-missing": "A DT_NEEDED library is not found on the loader's search path",
    "libc-mismatch": "A glibc object on a musl root, or the reverse",
    "symbol-version-missing": "A required symbol version is not defined by the library",
    "size-exceeds-memory": "The unpacked initramfs does not fit the machine's memory",
}
"""Finding codes of the built-in auditors and what each means (SARIF rules)."""

FIXES: dict[str, str] = {
    "isa-required": "boot a machine that has the extension (--machine), or rebuild the "
                    "file for the CPU (-march=rv64gc)",
    "isa-instructions": "check the file selects code at run time, or rebuild it without "
                        "the extension",
    "abi-mismatch": "rebuild with the root's ABI (-mabi=lp64d on Debian and Alpine)",
    "not-riscv": "replace the file with its riscv64 build",
    "elf-unreadable": "reinstall or recopy the file",
    "interp-missing": "add the C library whose loader it names",
    "needed-missing": "add the packages that ship the missing libraries",
    "libc-mismatch": "use a root with the C library the file was built for, or rebuild it",
    "symbol-version-missing": "use a newer release of the root, or rebuild against it",
    "size-exceeds-memory": "give the machine more memory (--machine / [machines]) or write "
                           "a disk image (-o image.ext4)",
}
"""One line per code: what to do about it (the text report's closing lines)."""

_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render(report: AuditReport, fmt: str, *, deep: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_json(report, deep=deep), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(report), indent=2) + "\n"
    return to_text(report)


def to_json(report: AuditReport, *, deep: bool = False) -> dict[str, Any]:
    """``{"target", "files", "findings", "summary"}`` as documented in docs/audit.md."""
    files = []
    for path in sorted(report.files):
        facts = report.files[path]
        entry = {key: facts.get(key, [] if key == "missing" else None) for key in FILE_KEYS}
        entry["path"] = path
        if deep:
            entry["instructions"] = facts.get("instructions", {})
        extra = {k: v for k, v in facts.items() if k not in entry}
        files.append({**entry, **extra})
    return {
        "target": {"machine": report.machine.name, "isa": report.machine.isa},
        "files": files,
        "findings": [f.to_json() for f in report.sorted_findings()],
        "summary": {"files": len(report.files), "errors": len(report.errors),
                    "warnings": len(report.warnings)},
    }


def to_text(report: AuditReport) -> str:
    """Findings grouped by file (files with errors first), a summary line, the fixes."""
    groups: dict[str, list[Finding]] = {}
    for finding in report.sorted_findings():
        if finding.severity is not Severity.INFO:
            groups.setdefault(finding.path or "(whole tree)", []).append(finding)
    order = sorted(groups, key=lambda p: (min(f.severity.rank for f in groups[p]), p))
    lines = []
    for path in order:
        lines.append(path)
        for finding in groups[path]:
            lines.append(f"  {finding.severity.value}[{finding.code}] {finding.message}")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "FAIL" if errors else "ok"
    if lines:
        lines.append("")
    lines.append(f"{verdict}: {len(report.files)} ELF files audited for {report.machine.name} "
                 f"({report.machine.isa}): {errors} error{'s' * (errors != 1)}, "
                 f"{warnings} warning{'s' * (warnings != 1)}")
    codes = sorted({f.code for f in report.findings if f.severity is not Severity.INFO},
                   key=lambda c: min(f.severity.rank for f in report.findings if f.code == c))
    for code in codes:
        if code in FIXES:
            lines.append(f"fix {code}: {FIXES[code]}")
    return "\n".join(lines) + "\n"


def to_sarif(report: AuditReport) -> dict[str, Any]:
    """SARIF 2.1.0 with one run: rules for every code seen, one result per finding."""
    codes = sorted({f.code for f in report.findings})
    index = {code: n for n, code in enumerate(codes)}
    rules = []
    for code in codes:
        rule: dict[str, Any] = {"id": code, "name": code.replace("-", " ").title().replace(
            " ", ""), "shortDescription": {"text": RULES.get(code, code)}}
        if code in FIXES:
            rule["help"] = {"text": FIXES[code]}
        rules.append(rule)
    results = []
    for finding in report.sorted_findings():
        uri = (finding.path or "/").lstrip("/") or "."
        results.append({
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _SARIF_LEVELS[finding.severity],
            "message": {"text": finding.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
            "properties": {"auditor": finding.auditor, **dict(finding.details)},
        })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rvforge",
                "version": _version(),
                "rules": rules,
            }},
            "properties": {"machine": report.machine.name, "isa": report.machine.isa},
            "results": results,
        }],
    }


def _version() -> str:
    try:
        return importlib.metadata.version("rvforge-core")
    except importlib.metadata.PackageNotFoundError:
        return "0"
