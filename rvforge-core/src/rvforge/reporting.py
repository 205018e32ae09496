"""Rendering audit reports: text for people, JSON for scripts, SARIF for code scanning."""

from __future__ import annotations

import json
from typing import Any

from rvforge.findings import Severity
from rvforge.pipeline import AuditReport

FORMATS = ("text", "json", "sarif")


def render(report: AuditReport, fmt: str, *, deep: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_json(report, deep=deep), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(report), indent=2) + "\n"
    return to_text(report)


def to_json(report: AuditReport, *, deep: bool = False) -> dict[str, Any]:
    return {
        "target": {"machine": report.machine.name, "isa": report.machine.isa},
        "files": [report.files[p] for p in sorted(report.files)],
        "findings": [f.to_json() for f in report.sorted_findings()],
        "summary": {"files": len(report.files), "errors": len(report.errors),
                    "warnings": len(report.warnings)},
    }


def to_text(report: AuditReport) -> str:
    lines = []
    for finding in report.sorted_findings():
        if finding.severity is Severity.INFO:
            continue
        lines.append(f"{finding.severity.value}: {finding.path or '-'}: {finding.message} "
                     f"[{finding.code}]")
    lines.append(f"{len(report.files)} files audited for {report.machine.name} "
                 f"({report.machine.isa}): {len(report.errors)} errors, "
                 f"{len(report.warnings)} warnings")
    return "\n".join(lines) + "\n"


def to_sarif(report: AuditReport) -> dict[str, Any]:
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    rules = sorted({f.code for f in report.findings})
    results = []
    for finding in report.sorted_findings():
        result: dict[str, Any] = {
            "ruleId": finding.code,
            "level": levels[finding.severity],
            "message": {"text": finding.message},
        }
        if finding.path:
            result["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": finding.path.lstrip("/")}}}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "rvforge", "rules": [{"id": r} for r in rules]}},
            "results": results,
        }],
    }
