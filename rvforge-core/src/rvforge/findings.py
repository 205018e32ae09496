"""What auditors report: findings, and per-file facts for machine-readable reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.Enum):
    """How bad a finding is. ``ERROR`` stops a build before packing (exit status 3)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an auditor has to say about the tree.

    :param severity: error, warning or info.
    :param code: stable machine-readable identifier (``isa-required``, ``needed-missing``...).
    :param path: the tree path concerned, or ``None`` for the tree as a whole.
    :param message: one sentence for people, naming the file and what to do.
    :param auditor: name of the auditor that produced it (filled in by the pipeline).
    :param details: extra structured data for JSON output.
    """

    severity: Severity
    code: str
    path: str | None
    message: str
    auditor: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "severity": self.severity.value,
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "auditor": self.auditor,
        }
        if self.details:
            data["details"] = dict(self.details)
        return data


@dataclass(frozen=True, slots=True)
class FileRecord:
    """Facts an auditor established about one file (the ``files`` list of JSON reports).

    Auditors may yield these next to findings; records for the same path from several
    auditors are merged key by key.
    """

    path: str
    facts: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FindingCode:
    """A finding code an auditor declares (:attr:`rvforge.Auditor.codes`): the rule that
    SARIF output describes and the fix the text report names.

    :param code: the :attr:`Finding.code` (``isa-required``): the SARIF rule id.
    :param summary: one line on what the finding means.
    :param fix: one line on what to do about it (empty if there is nothing to do).
    """

    code: str
    summary: str
    fix: str = ""
