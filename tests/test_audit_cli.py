"""``rvforge audit`` end to end: the real executable on real trees, every output format."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from fixture_types import RiscvCC, RunRvforge

FILE_KEYS = {"path", "machine", "abi", "arch_attribute", "missing"}
SEVERITIES = {"error", "warning", "info"}


@pytest.fixture(scope="module")
def alpine_dir(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("alpine-root")
    with tarfile.open(alpine_tarball) as tar:
        tar.extractall(root, filter="fully_trusted")
    return root


@pytest.fixture
def broken_root(alpine_dir: Path, tmp_path: Path, riscv_cc: RiscvCC) -> Path:
    """Alpine plus a static V program, a glibc program, an x86-64 ELF and a truncated ELF."""
    root = tmp_path / "root"
    shutil.copytree(alpine_dir, root, symlinks=True)
    shutil.copy(riscv_cc.program("vsum", "vstatic", "-O2", "-static", "-march=rv64gcv"),
                root / "usr/bin/vsum")
    shutil.copy(riscv_cc.program("hello", "hello-dyn", "-O2"), root / "usr/bin/glibc")
    shutil.copy("/bin/true", root / "usr/bin/x86-true")
    (root / "usr/bin/cut-short").write_bytes((root / "bin/busybox").read_bytes()[:5000])
    return root


def test_alpine_tarball_is_clean(rvforge_cli: RunRvforge, alpine_tarball: Path) -> None:
    result = rvforge_cli("audit", "--isa", "rv64gc", str(alpine_tarball))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: 17 ELF files audited")
    data = json.loads(rvforge_cli("audit", "--isa", "rva20u64", "--format", "json",
                                  str(alpine_tarball), check=True).stdout)
    assert data["summary"] == {"files": 17, "errors": 0, "warnings": 0}


def test_text_report(rvforge_cli: RunRvforge, broken_root: Path) -> None:
    result = rvforge_cli("audit", "--isa", "rv64gc", str(broken_root))
    assert result.returncode == 3, result.stderr
    out = result.stdout
    # grouped by file, the file's findings indented under it
    assert "/usr/bin/vsum\n  error[isa-required] /usr/bin/vsum requires v" in out
    assert "error[libc-mismatch] glibc needs glibc (libc.so.6" in out
    assert "error[not-riscv] /usr/bin/x86-true is a x86-64 ELF" in out
    assert "error[elf-unreadable] /usr/bin/cut-short" in out
    summary = [line for line in out.splitlines() if line.startswith("FAIL: ")]
    assert summary == ["FAIL: 21 ELF files audited for generic-rv64gc "
                       "(rv64imafdc_zicsr_zifencei): 4 errors, 0 warnings"] or \
        summary[0].endswith(": 4 errors, 0 warnings")
    assert "fix isa-required:" in out and "fix libc-mismatch:" in out


def test_json_report(rvforge_cli: RunRvforge, broken_root: Path) -> None:
    result = rvforge_cli("audit", "--isa", "rv64gc", "--deep", "--format", "json",
                         str(broken_root))
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert set(data) == {"target", "files", "findings", "summary"}
    assert data["target"]["isa"] == "rv64imafdc_zicsr_zifencei"
    files = {f["path"]: f for f in data["files"]}
    for entry in files.values():
        assert FILE_KEYS | {"instructions"} <= set(entry)
    vsum = files["/usr/bin/vsum"]
    assert vsum["machine"] == "riscv64" and vsum["abi"] == "lp64d"
    assert "v1p0" in vsum["arch_attribute"] and vsum["missing"][0] == "v"
    assert vsum["instructions"]["v"] == 4  # vsetvli + vle32.v, inlined into main too
    assert files["/usr/bin/x86-true"]["machine"] == "x86-64"
    for finding in data["findings"]:
        assert {"severity", "code", "path", "message"} <= set(finding)
        assert finding["severity"] in SEVERITIES
    found = {(f["code"], f["path"]) for f in data["findings"] if f["severity"] == "error"}
    assert found == {("isa-required", "/usr/bin/vsum"), ("libc-mismatch", "/usr/bin/glibc"),
                     ("not-riscv", "/usr/bin/x86-true"),
                     ("elf-unreadable", "/usr/bin/cut-short")}
    # Alpine's libcrypto holds vector-crypto code its attribute does not claim, and asks
    # the kernel (riscv_hwprobe through syscall()) before using it: a warning
    warnings = {(f["code"], f["path"]) for f in data["findings"] if f["severity"] == "warning"}
    assert warnings == {("isa-instructions", "/lib/libcrypto.so.3")}
    assert data["summary"] == {"files": len(files), "errors": 4, "warnings": 1}


def test_sarif_report_has_what_code_scanning_needs(
        rvforge_cli: RunRvforge, broken_root: Path) -> None:
    result = rvforge_cli("audit", "--isa", "rv64gc", "--format", "sarif", str(broken_root))
    assert result.returncode == 3
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "rvforge" and driver["version"]
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
    assert run["results"]
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note"}
        assert res["message"]["text"]
        [location] = res["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri and not uri.startswith("/")
    assert {r["ruleId"] for r in run["results"]} >= {"isa-required", "not-riscv"}


def test_machine_profiles_are_named_and_respected(
        rvforge_cli: RunRvforge, broken_root: Path) -> None:
    (broken_root / "usr/bin/glibc").unlink()
    (broken_root / "usr/bin/x86-true").unlink()
    (broken_root / "usr/bin/cut-short").unlink()
    result = rvforge_cli("audit", "--isa", "rv64gcv", str(broken_root))
    assert result.returncode == 0, result.stdout
    result = rvforge_cli("audit", "--isa", "rva23u64", "--format", "json", str(broken_root))
    assert json.loads(result.stdout)["summary"]["errors"] == 0


def test_unparsable_isa_is_a_usage_error(rvforge_cli: RunRvforge, alpine_tarball: Path) -> None:
    result = rvforge_cli("audit", "--isa", "x86_64", str(alpine_tarball))
    assert result.returncode == 2
    assert "'x86_64' is not a RISC-V ISA string" in result.stderr


def test_single_elf_file(rvforge_cli: RunRvforge, riscv_cc: RiscvCC) -> None:
    path = riscv_cc.program("vsum", "vdyn-v", "-O2", "-march=rv64gcv")
    result = rvforge_cli("audit", "--isa", "rv64gc", "--format", "json", str(path))
    data = json.loads(result.stdout)
    assert result.returncode == 3
    assert [f["code"] for f in data["findings"]] == ["isa-required"]
