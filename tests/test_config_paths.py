"""Paths in a machine profile of ``rvforge.toml`` are relative to the config file's directory,
as the file's other paths are, not to the directory rvforge runs in (issue 20): the real QEMU
behind a relative ``qemu = "bin/qemu"``, asked through ``rvforge machines``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
QEMU = shutil.which("qemu-system-riscv64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="needs qemu-system-riscv64")


def profile(tmp_path: Path, qemu: str, more: str = "") -> dict[str, object]:
    """``mine``, as ``rvforge machines --format json`` run in another directory shows it."""
    conf = tmp_path / "conf"
    (conf / "bin").mkdir(parents=True, exist_ok=True)
    if not (conf / "bin" / "qemu").exists():
        (conf / "bin" / "qemu").symlink_to(str(QEMU))
    (conf / "rvforge.toml").write_text(
        f'[machines.mine]\nqemu = "{qemu}"\ncpu = "rv64"\n{more}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    result = subprocess.run([RVFORGE, "machines", "--config", str(conf / "rvforge.toml"),
                             "--format", "json"], capture_output=True, text=True, check=False,
                            cwd=elsewhere, env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = data if isinstance(data, list) else data["machines"]
    return next(row for row in rows if row["name"] == "mine")


def test_a_relative_qemu_in_a_profile_is_found_next_to_the_config_file(
        tmp_path: Path) -> None:
    mine = profile(tmp_path, "bin/qemu")
    assert mine["options"] == {"qemu": str(tmp_path / "conf" / "bin" / "qemu"), "cpu": "rv64"}
    assert mine["bootable"] is True, mine
    assert str(tmp_path / "conf" / "bin" / "qemu") in str(mine["runs_on"])


def test_a_missing_relative_qemu_is_named_where_it_was_looked_for(tmp_path: Path) -> None:
    mine = profile(tmp_path, "bin/nothere")
    assert mine["bootable"] is False
    assert f"{tmp_path / 'conf' / 'bin' / 'nothere'}: not an executable file" in str(
        mine["error"])


def test_a_bare_program_name_stays_a_program_on_path(tmp_path: Path) -> None:
    mine = profile(tmp_path, "qemu-system-riscv64")
    assert mine["options"] == {"qemu": "qemu-system-riscv64", "cpu": "rv64"}
    assert mine["bootable"] is True, mine


def test_shares_and_a_bios_file_in_a_profile_are_relative_to_the_config_file(
        tmp_path: Path) -> None:
    mine = profile(tmp_path, "bin/qemu", 'shares = ["./build:/mnt/build", "/abs:/mnt/a:ro"]\n'
                                         'bios = "fw/fw_dynamic.bin"\n')
    conf = tmp_path / "conf"
    assert mine["options"] == {
        "qemu": str(conf / "bin" / "qemu"), "cpu": "rv64",
        "shares": [f"{conf}/./build:/mnt/build", "/abs:/mnt/a:ro"],
        "bios": f"{conf}/fw/fw_dynamic.bin"}
    named = profile(tmp_path, "bin/qemu", 'bios = "default"\n')  # QEMU's own: a name
    assert named["options"] == {"qemu": str(conf / "bin" / "qemu"), "cpu": "rv64",
                                "bios": "default"}
