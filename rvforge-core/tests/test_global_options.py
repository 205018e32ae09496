"""The global options -v, -q, --log-format and --debug work before and after the command
(``rvforge run -q IMAGE -- CMD``), through the real ``rvforge`` executable."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fixture_types import RunRvforge

from rvforge.log import log_level


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("rv\n")
    return root


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_json_work_on_either_side_of_the_command(rvforge_cli: RunRvforge, source: Path,
                                                           where: str) -> None:
    loud = rvforge_cli("build", "--provider", "local", "--source", str(source), "-o",
                       str(source.parent / "out.cpio"))
    assert "[info     ] provider" in loud.stderr, loud.stderr
    args = ["build", "--provider", "local", "--source", str(source), "-o",
            str(source.parent / "out.cpio")]
    quiet = rvforge_cli(*(["-q", *args] if where == "before" else [*args, "-q"]))
    assert quiet.returncode == 0 and "[info" not in quiet.stderr, quiet.stderr
    as_json = rvforge_cli(*(["--log-format", "json", *args] if where == "before"
                            else [*args, "--log-format", "json"]))
    records = [json.loads(line) for line in as_json.stderr.splitlines() if line.strip()]
    assert records and records[0]["event"] == "provider", as_json.stderr


def test_a_bad_log_format_after_the_command_is_a_usage_error(rvforge_cli: RunRvforge,
                                                             source: Path) -> None:
    result = rvforge_cli("audit", str(source), "--log-format", "xml")
    assert result.returncode == 2
    assert result.stderr.startswith("rvforge: error: Invalid value for --log-format: must be "
                                    "one of auto, console, json"), result.stderr


def test_run_accepts_quiet_after_the_command(rvforge_cli: RunRvforge, tmp_path: Path) -> None:
    result = rvforge_cli("run", "-q", str(tmp_path / "missing.cpio"), "--", "true")
    assert (result.returncode, result.stderr) == (
        2, f"rvforge: error: {tmp_path / 'missing.cpio'}: no such image file\n")


def test_debug_after_the_command_shows_the_traceback(rvforge_cli: RunRvforge,
                                                     tmp_path: Path) -> None:
    result = rvforge_cli("inspect", str(tmp_path / "missing.cpio"), "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr, result.stderr


def test_a_command_printing_a_guests_output_logs_warnings_only_unless_verbose() -> None:
    assert log_level(command_output=True) == logging.WARNING
    assert log_level(command_output=True, verbose=1) == logging.DEBUG
    assert log_level() == logging.INFO
    assert log_level(quiet=True, verbose=1) == logging.WARNING
