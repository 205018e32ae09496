"""A facts-cache row of the wrong types (another version's, a damaged or planted file) is
ignored and the file read again: the audit's answer is the same, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fixture_types import RiscvCC
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.riscv import facts_cache


def damage(value: str, how: str) -> str:
    data = json.loads(value)
    if how == "strings":  # every number a string
        return json.dumps(json.loads(json.dumps(data), parse_int=str))
    if how == "nulls":
        return json.dumps([None] * len(data)) if isinstance(data, list) else "null"
    return json.dumps({"not": "a row"})


@pytest.mark.parametrize("how", ["strings", "nulls", "object"])
def test_a_cache_row_of_the_wrong_types_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, riscv_cc: RiscvCC,
        how: str) -> None:
    monkeypatch.setattr(facts_cache, "RACY_SECONDS", 0.0)  # the program was just built
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_bytes(riscv_cc.program("hello", "hello").read_bytes())
    audit = ["--quiet", "audit", str(root), "--isa", "rv64gc", "--format", "json"]
    first = CliRunner().invoke(app, audit)
    assert first.exit_code in (0, 3) and "Traceback" not in first.stderr, first.stderr
    database = tmp_path / "cache" / "elf-facts" / "facts.sqlite3"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT key, value FROM facts WHERE value != '0'").fetchall()
        assert rows, "nothing was cached: the test would prove nothing"
        for key, value in rows:
            db.execute("UPDATE facts SET value = ? WHERE key = ?", (damage(value, how), key))
        for key, value in db.execute("SELECT key, value FROM trees").fetchall():
            columns, members = json.loads(value)
            db.execute("UPDATE trees SET value = ? WHERE key = ?",
                       (json.dumps([[damage(json.dumps(c), how) for c in columns], members]),
                        key))
    db.close()
    again = CliRunner().invoke(app, audit)
    assert again.exit_code == first.exit_code, again.stderr
    assert "Traceback" not in again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
