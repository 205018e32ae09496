"""Rendering audit reports: text for people, JSON for scripts, SARIF for code scanning.

The JSON and SARIF schemas are documented in ``docs/audit.md``.
"""

from __future__ import annotations

import importlib.metadata
import json
from typing import Any

from rvforge.findings import Finding, Severity
from rvforge.spec import AuditReport

FORMATS = ("text", "json", "sarif")

FILE_KEYS = ("path", "machine", "abi", "arch_attribute", "missing")
"""Keys every entry of the JSON ``files`` list has (``instructions`` too with --deep)."""

_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escaped(name: str) -> str:
    """``name`` with backslashes, control characters and undecodable bytes escaped as
    ``ls -b`` does (``\\n``, ``\\x1b``), so a name cannot break or forge a line."""
    if name.isprintable() and "\\" not in name:
        return name
    out = []
    for char in name:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "\udc80" <= char <= "\udcff":  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif not char.isprintable():
            out.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def counted(n: int, noun: str) -> str:
    """``1 error``, ``2 errors``, ``1 ELF file``: a count with its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


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
            groups.setdefault(escaped(finding.path) if finding.path else "(whole tree)",
                              []).append(finding)
    order = sorted(groups, key=lambda p: (min(f.severity.rank for f in groups[p]), p))
    lines = []
    for path in order:
        lines.append(path)
        for finding in groups[path]:
            lines.append(f"  {finding.severity.value}[{finding.code}] "
                         f"{escaped(finding.message)}")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "FAIL" if errors else "ok"
    if lines:
        lines.append("")
    lines.append(f"{verdict}: {counted(len(report.files), 'ELF file')} audited for "
                 f"{report.machine.name} ({report.machine.isa}): {counted(errors, 'error')}, "
                 f"{counted(warnings, 'warning')}")
    codes = sorted({f.code for f in report.findings if f.severity is not Severity.INFO},
                   key=lambda c: min(f.severity.rank for f in report.findings if f.code == c))
    for code in codes:
        declared = report.codes.get(code)
        if declared is not None and declared.fix:
            lines.append(f"fix {code}: {declared.fix}")
    return "\n".join(lines) + "\n"


def to_sarif(report: AuditReport) -> dict[str, Any]:
    """SARIF 2.1.0 with one run: rules for every code seen (described as their auditors
    declare them), one result per finding."""
    codes = sorted({f.code for f in report.findings})
    index = {code: n for n, code in enumerate(codes)}
    rules = []
    for code in codes:
        declared = report.codes.get(code)
        rule: dict[str, Any] = {"id": code, "name": code.replace("-", " ").title().replace(
            " ", ""), "shortDescription": {"text": declared.summary if declared else code}}
        if declared is not None and declared.fix:
            rule["help"] = {"text": declared.fix}
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
