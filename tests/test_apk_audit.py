"""Core's .apk reader on packages laid out exactly as abuild writes them (rvforge-alpine's
test builder: a signed signature stream, ``.PKGINFO`` and install scripts, PAX headers with
``APK-TOOLS.checksum.SHA1``, directories and symlinks), holding real riscv64 objects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fixture_types import RiscvCC
from typer.testing import CliRunner

from rvforge.cli import app

from rvforge_alpine.testing import FileSpec, build_apk, new_key


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, ["--quiet", "audit", *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_an_abuild_style_apk_is_audited_at_its_installed_paths(riscv_cc: RiscvCC, tmp_path: Path
                                                                ) -> None:
    vector = riscv_cc.program("vsum", "vsum-apk", "-O2", "-march=rv64gcv").read_bytes()
    plain = riscv_cc.program("hello", "hello-apk", "-O2").read_bytes()
    files = [FileSpec("usr"), FileSpec("usr/bin"), FileSpec("usr/bin/vsum", vector, 0o755),
             FileSpec("usr/bin/hello", plain, 0o755), FileSpec("usr/bin/hi", link="hello"),
             FileSpec("usr/share/doc/demo/README", b"docs\n")]
    apk = build_apk(new_key(1024), "test.rsa.pub", "demo", "1.0-r0", files=files,
                    scripts={".post-install": b"#!/bin/sh\necho hi\n"})
    path = tmp_path / apk.file_name
    path.write_bytes(apk.data)
    result = audit("--format", "json", "--isa", "rv64gc", str(path))
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["inputs"][0]["kind"] == "apk" and data["inputs"][0]["profile"] == "rva23u64"
    assert {f["path"]: f["profile"] for f in data["files"]} == {
        "/usr/bin/vsum": "rva23u64", "/usr/bin/hello": "rva20u64"}
    [finding] = data["findings"]
    assert finding["path"] == "/usr/bin/vsum" and finding["code"] == "isa-required"
    assert audit("--isa", "rv64gcv", str(path)).returncode == 0


def test_a_top_level_data_member_whose_name_starts_with_a_dot_is_audited(
        riscv_cc: RiscvCC, tmp_path: Path) -> None:
    """Only apk's control members (``.PKGINFO``, ``.SIGN.*``, install scripts) are skipped;
    a data member ``.hidden`` was skipped unaudited with them."""
    vector = riscv_cc.program("vsum", "vsum-dot", "-O2", "-march=rv64gcv").read_bytes()
    apk = build_apk(new_key(1024), "test.rsa.pub", "dot", "1.0-r0",
                    files=[FileSpec(".hidden", vector, 0o755)],
                    scripts={".post-install": b"#!/bin/sh\necho hi\n"})
    path = tmp_path / apk.file_name
    path.write_bytes(apk.data)
    result = audit("--format", "json", "--isa", "rv64gc", str(path))
    assert result.returncode == 3, result.stderr
    data = json.loads(result.stdout)
    assert [f["path"] for f in data["files"]] == ["/.hidden"]
    assert [f["code"] for f in data["findings"]] == ["isa-required"]
