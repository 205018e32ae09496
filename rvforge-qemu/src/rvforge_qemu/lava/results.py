"""LAVA's logs and results, read back as rvforge's run rows (machine, status, seconds).

Accepted, as text (everything in them is data from a lab, checked before use):

- a ``lava-run`` log (one JSON object per line, what ``rvforge lava run`` keeps) or a
  server's (``lavacli jobs logs ID --raw``: a YAML list of the same records);
- a server's results (``lavacli results ID --yaml``: a YAML list of test cases);
- LAVA's JUnit XML (``/api/v0.2/jobs/ID/junit/``).

A log gives the command's output and exit status (its ``RVFORGE-STATUS`` line); results
alone give pass or fail, so a failed command's status is unknown there (``None``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rvforge import InputError

from rvforge_qemu.lava.job import CASE, SUITE_PREFIX, Markers

SUITE = re.compile(rf"^\d+_{re.escape(SUITE_PREFIX)}(.+)$")
BOOT_CASES = ("login-action", "auto-login-action")
MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class LavaRun:
    """One machine's outcome.

    :param machine: the machine profile's name.
    :param result: ``pass`` or ``fail`` (the command's test case), or ``incomplete`` (no
        test case: the job did not reach the command, e.g. the boot failed).
    :param status: the command's exit status, when known.
    :param seconds: from QEMU's start to the command's end (a log), or the boot's and the
        command's LAVA durations (results).
    :param output: the command's output lines (from a log).
    :param reason: why the job failed, as LAVA says (from a log).
    """

    machine: str
    result: str
    status: int | None
    seconds: float | None
    output: tuple[str, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "status": self.status,
                "seconds": None if self.seconds is None else round(self.seconds, 2),
                "result": self.result}


def parse(text: str, machine_hint: str, name: str) -> LavaRun:
    """Read one job's log or results.

    :param machine_hint: the machine when the input does not say (a file's stem).
    :param name: the input's name for messages.
    :raises InputError: not a LAVA log, results list or JUnit report.
    """
    if len(text) > MAX_BYTES:
        raise InputError(f"{name}: larger than {MAX_BYTES >> 20} MB; not a LAVA job's log")
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _from_cases(_junit_cases(stripped, name), machine_hint)
    records = _records(stripped, name)
    if all("lvl" in r for r in records):
        return _from_log(records, machine_hint)
    if all("result" in r for r in records):
        return _from_cases([_case(r) for r in records], machine_hint)
    raise InputError(f"{name}: neither a LAVA log (records with 'lvl') nor LAVA results "
                     "(records with 'result')")


@dataclass(frozen=True)
class _Case:
    suite: str
    name: str
    result: str
    duration: float | None


def _records(text: str, name: str) -> list[dict[str, Any]]:
    """A log's lines (each a flow mapping), else a YAML list, of mappings."""
    records: Any
    if text.startswith("{"):
        records = [r for line in text.splitlines() if line.strip()
                   if (r := record_of(line)) is not None]
    else:
        records = _yaml(text, name)
    if not isinstance(records, list) or not records \
            or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{name}: not a list of LAVA records")
    return records


def record_of(line: str) -> dict[str, Any] | None:
    """One log line: JSON, or the YAML flow mapping LAVA writes when a value is tagged
    (``"size": ! "31167488"``); ``None`` if it is neither."""
    try:
        record = json.loads(line)
    except ValueError:
        try:
            record = _yaml(line, "")
        except InputError:
            return None
    return record if isinstance(record, dict) else None


def _yaml(text: str, name: str) -> Any:
    import yaml  # only for YAML input

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InputError(f"{name}: not a LAVA log or YAML: {str(error).splitlines()[0]}"
                         ) from None


def _case(record: dict[str, Any]) -> _Case:
    """A server result (suite/name/metadata) or a log's (definition/case)."""
    meta = record.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return _Case(str(record.get("suite", record.get("definition", ""))),
                 str(record.get("name", record.get("case", ""))),
                 str(record.get("result", "")),
                 _number(record.get("duration", meta.get("duration"))))


def _from_cases(cases: list[_Case], machine_hint: str) -> LavaRun:
    for case in cases:
        found = SUITE.match(case.suite)
        if found and case.name == CASE:
            boot = sum(c.duration or 0.0 for c in cases if c.name in BOOT_CASES)
            seconds = None if case.duration is None else case.duration + boot
            return LavaRun(found.group(1), _result(case.result),
                           0 if case.result == "pass" else None, seconds)
    return LavaRun(machine_hint, "incomplete", None, None)


def _from_log(records: list[dict[str, Any]], machine_hint: str) -> LavaRun:
    cases = [(r, _case(r["msg"])) for r in records
             if r.get("lvl") == "results" and isinstance(r.get("msg"), dict)]
    started = next((r.get("dt") for r, c in cases if c.name == "execute-qemu"), None)
    command = next(((r, c) for r, c in cases
                    if SUITE.match(c.suite) and c.name == CASE), None)
    output, status = _console(records)
    job: dict[str, Any] = next((r["msg"] for r, c in cases
                                if c.suite == "lava" and c.name == "job"), {})
    reason = " ".join(str(job.get("error_msg", "")).split())
    if command is None:
        return LavaRun(machine_hint, "incomplete", None, None, output,
                       reason or "the job did not reach the command")
    record, case = command
    machine = SUITE.match(case.suite).group(1)  # type: ignore[union-attr]
    seconds = _elapsed(started, record.get("dt"))
    return LavaRun(machine, _result(case.result), status, seconds, output, reason)


def _console(records: list[dict[str, Any]]) -> tuple[tuple[str, ...], int | None]:
    """The lines between the begin marker and the status line, and the status (the
    markers are those of the line LAVA typed)."""
    markers: Markers | None = None
    lines: list[str] | None = None
    for record in records:
        message = record.get("msg")
        if isinstance(message, dict) and "sending" in message:  # older servers' input lines
            message = str(message["sending"])
        if not isinstance(message, str):
            continue
        if record.get("lvl") == "input" and markers is None:
            markers = Markers.of_typed(message)
        if record.get("lvl") != "target" or markers is None:
            continue
        if message.strip() == markers.begin:
            lines = []
        elif lines is not None and (found := markers.status.match(message)):
            return tuple(lines), int(found.group(1))
        elif lines is not None:
            lines.append(message)
    return tuple(lines or ()), None


def _junit_cases(text: str, name: str) -> list[_Case]:
    try:
        root = ElementTree.fromstring(text)  # expat refuses entity expansion bombs
    except ElementTree.ParseError as error:
        raise InputError(f"{name}: not JUnit XML: {error}") from None
    cases = []
    for case in root.iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        cases.append(_Case(case.get("classname", ""), case.get("name", ""),
                           "fail" if failed else "skip" if skipped else "pass",
                           _number(case.get("time"))))
    if not cases:
        raise InputError(f"{name}: JUnit XML without test cases")
    return cases


def _result(value: str) -> str:
    return "pass" if value == "pass" else "fail"


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _elapsed(start: object, end: object) -> float | None:
    try:
        return (datetime.fromisoformat(str(end))
                - datetime.fromisoformat(str(start))).total_seconds()
    except ValueError:
        return None
