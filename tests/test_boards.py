"""Board profiles, VLEN settings and the audit across machines, through the real CLI and
the real QEMUs: each board lists its cited ISA and source, says why it cannot boot on the
QEMU at hand, its QEMU CPU string has what the board has and lacks what it lacks, and
``audit --machine A,B,C`` gives one row per machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_types import RiscvCC

from rvforge import BuildContext
from rvforge.registry import build_registry
from rvforge.riscv.isa import parse_isa, parse_target

from rvforge_qemu.boards import BOARDS
from rvforge_qemu.cpuisa import cpu_isa
from rvforge_qemu.qemubin import probe

pytestmark = pytest.mark.qemu

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
BY_NAME = {board.name: board for board in BOARDS}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def machines(*args: str) -> dict[str, dict[str, object]]:
    listed = cli("machines", "--format", "json", *args)
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: row for row in json.loads(listed.stdout)}


@pytest.fixture(scope="module")
def vsum(riscv_cc: RiscvCC) -> Path:
    return riscv_cc.program("vsum", "vsum", "-static", "-O2", "-march=rv64gcv")


def test_machines_lists_every_board_with_its_isa_and_source() -> None:
    rows = machines()
    for board in BOARDS:
        row = rows[board.name]
        assert row["isa"] == board.isa and row["source"] == board.source, board.name
        parse_target(str(row["isa"]))  # a valid ISA string
    assert "spacemit/k1.dtsi" in str(rows["spacemit-k1"]["source"])
    assert "starfive/jh7110.dtsi" in str(rows["starfive-jh7110"]["source"])
    assert "sophgo/sg2042-cpus.dtsi" in str(rows["sophgo-sg2042"]["source"])
    assert "eswin/eic7700.dtsi" in str(rows["sifive-p550"]["source"])
    assert {"v", "zvl256b", "zicond", "zicbom"} <= parse_isa(
        str(rows["spacemit-k1"]["isa"])).closure()
    assert "xtheadvector" in str(rows["sophgo-sg2042"]["isa"])
    # an audit-only board, and emulated CPUs carry no source
    assert rows["sophgo-sg2042"]["launcher"] == "" and rows["sophgo-sg2042"]["bootable"] is False
    assert rows["qemu-virt"]["source"] == ""
    text = cli("machines").stdout
    assert "    ISA from Linux arch/riscv/boot/dts/spacemit/k1.dtsi (cpu@0 riscv,isa)" in text


def test_on_qemu_7_2_the_boards_it_cannot_run_say_why() -> None:
    rows = machines()
    assert rows["starfive-jh7110"]["bootable"] is True
    assert rows["sifive-p550"]["bootable"] is True
    for name, why in (("spacemit-k1", "zicond"), ("thead-c906", "CPU model 'thead-c906'"),
                      ("rva22u64", "it came in QEMU 9.0")):
        assert rows[name]["bootable"] is False and why in str(rows[name]["error"]), name
        assert rows[name]["isa"] == BY_NAME[name].isa  # still an audit target
    assert "cannot boot here: machine 'spacemit-k1'" in cli("machines").stdout


def test_on_qemu_10_every_board_with_a_qemu_cpu_boots(qemu10: Path) -> None:
    rows = machines("--qemu", str(qemu10))
    for board in BOARDS:
        assert rows[board.name]["bootable"] is bool(board.cpu), (board.name, rows[board.name])


def test_a_boards_qemu_cpu_has_what_the_board_has_and_lacks_what_it_lacks(
        tmp_path: Path) -> None:
    with BuildContext(build_registry(), cache_dir=tmp_path / "cache") as ctx:
        for name in ("starfive-jh7110", "sifive-p550"):
            emulated = parse_isa(cpu_isa(BY_NAME[name].cpu, ctx)).closure()
            board = parse_isa(BY_NAME[name].isa).closure()
            assert {"zba", "zbb"} <= emulated and not {"zbc", "zbs", "v"} & emulated, name
            assert ("h" in emulated) == ("h" in board), name


def test_the_k1_cpu_on_qemu_10_is_rvv_1_at_vlen_256(qemu10: Path, tmp_path: Path) -> None:
    with BuildContext(build_registry(), cache_dir=tmp_path / "cache") as ctx:
        qemu = probe(qemu10, ctx.cache_dir)
        emulated = parse_isa(cpu_isa(BY_NAME["spacemit-k1"].cpu, ctx, qemu=qemu))
    assert {"v", "zvl256b", "zicond", "zicbom", "zicboz", "zfh", "zvfh"} <= emulated.closure()
    assert "h" not in emulated.names  # the X60 has no hypervisor extension


def test_a_vlen_setting_in_rvforge_toml(tmp_path: Path, vsum: Path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text('[machines.v512]\nvlen = 512\n\n'
                      '[machines.k1-at-1024]\ncpu = "rv64,v=true,vlen=256,elen=64"\n'
                      'vlen = 1024\n\n[machines.too-wide]\nvlen = 2048\n')
    rows = machines("--config", str(config))
    assert str(rows["v512"]["isa"]).endswith("_zvl512b") and "v" in parse_isa(
        str(rows["v512"]["isa"])).names  # vlen on plain rv64 turns V on
    assert str(rows["k1-at-1024"]["isa"]).endswith("_zvl1024b")
    assert "vlen must be one of 128, 256, 512, 1024" in str(rows["too-wide"]["error"])
    bad = cli("audit", str(vsum), "--machine", "too-wide", "--config", str(config))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert ("machine 'too-wide': vlen must be one of 128, 256, 512, 1024 (QEMU's vlen "
            "property, in bits), not 2048") in bad.stderr
    assert cli("audit", str(vsum), "--machine", "v512", "--config", str(config)
               ).returncode == 0


def test_audit_across_machines_gives_a_row_each_and_fails_if_any_fails(vsum: Path) -> None:
    result = cli("audit", str(vsum), "--machine",
                 "qemu-virt,qemu-virt-v,sophgo-sg2042,spacemit-k1,qemu-virt-rva23")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["machine", "status", "errors", "first", "finding"]
    rows = {line.split()[0]: line.split(None, 3) for line in lines[1:-1]}
    assert rows["qemu-virt"][1:3] == ["FAIL", "1"]
    assert rows["qemu-virt"][3].startswith("/vsum requires v, which qemu-virt")
    assert rows["qemu-virt-v"][1:] == ["ok", "0", "-"]
    assert rows["spacemit-k1"][1:3] == ["ok", "0"]
    assert rows["sophgo-sg2042"][1:3] == ["FAIL", "1"]  # XTheadVector is not V 1.0
    assert rows["qemu-virt-rva23"][1] == "unavailable"  # QEMU 7.2 lacks rva23s64
    assert lines[-1] == "FAIL: 5 machines, 2 with errors"
    data = json.loads(cli("audit", str(vsum), "--machine", "qemu-virt,qemu-virt-v",
                          "--format", "json").stdout)
    records = {r["machine"]: r for r in data["machines"]}
    assert records["qemu-virt"]["status"] == "FAIL" and records["qemu-virt"]["errors"] == 1
    assert records["qemu-virt"]["findings"][0]["code"] == "isa-required"
    assert records["qemu-virt-v"] == {**records["qemu-virt-v"], "status": "ok", "errors": 0,
                                      "first_finding": None, "findings": []}
    assert cli("audit", str(vsum), "--machine", "qemu-virt-v,spacemit-k1").returncode == 0
    unknown = cli("audit", str(vsum), "--machine", "qemu-virt,nonesuch")
    assert unknown.returncode == 2 and "nonesuch" in unknown.stderr


def test_booting_a_board_this_qemu_cannot_run_is_refused_with_the_reason(tmp_path: Path
                                                                         ) -> None:
    image = tmp_path / "image.cpio"
    image.write_bytes(b"070701" + b"0" * 504)  # refused before QEMU would read it
    result = cli("boot", str(image), "--machine", "thead-c906", "--kernel", str(image),
                 env={"RVFORGE_QEMU": "qemu-system-riscv64"})  # QEMU 7.2, on PATH
    assert result.returncode == 2, result.stderr
    assert ("rvforge: error: machine 'thead-c906' needs QEMU's CPU model 'thead-c906', which "
            "QEMU 7.2") in result.stderr


def test_running_on_an_audit_only_board_says_why_it_cannot_boot(tmp_path: Path) -> None:
    image = tmp_path / "image.cpio"
    image.write_bytes(b"070701" + b"0" * 504)  # refused before anything reads it
    result = cli("run", str(image), "--machine", "sophgo-sg2042", "--", "true")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rvforge: error: machine 'sophgo-sg2042' cannot boot: "
                                    "Sophgo SG2042"), result.stderr
    assert "no QEMU CPU model implements XTheadVector" in result.stderr
    assert len(result.stderr.splitlines()) == 1
