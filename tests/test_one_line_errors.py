"""Tracebacks the third battery still reached, each now exit 2 with one line naming the
input: ``~nosuchuser`` in a path option or a config path, an unbalanced quote in a machine
profile, a QEMU whose ``--version`` is not UTF-8 or that never answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.testing import assert_one_line_error

NOBODY = "~rvforge-no-such-user-here"


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, ["--quiet", *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "f").write_text("x")
    return tmp_path / "root"


@pytest.mark.parametrize("option", ["--overlay", "--source", "--qemu", "config-overlay"])
def test_a_home_of_no_user_is_one_line(tmp_path: Path, root: Path, option: str) -> None:
    out = ["-o", str(tmp_path / "out" / "x.tar"), "--no-audit", "--isa", "rv64gc"]
    if option == "--overlay":
        result = invoke("build", "--provider", "local", "--source", str(root), "--overlay",
                        f"{NOBODY}/x:/opt/x", *out)
    elif option == "--source":
        result = invoke("build", "--provider", "alpine", "--source", f"{NOBODY}/r.tar.gz",
                        *out)
    elif option == "--qemu":
        result = invoke("machines", "--qemu", f"{NOBODY}/qemu")
    else:
        config = tmp_path / "rvforge.toml"
        config.write_text(f'[[overlay]]\nname = "file"\nsource = "{NOBODY}/x"\n'
                          'dest = "/opt/x"\n')
        result = invoke("build", "--config", str(config), "--provider", "local",
                        "--source", str(root), *out)
    assert_one_line_error(result, 2, "names no user with a home directory")
    assert NOBODY in result.stderr


@pytest.mark.parametrize("key", ["extra_args", "append"])
def test_an_unbalanced_quote_in_a_machine_profile_is_one_line(tmp_path: Path, key: str
                                                              ) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text(f'[machines.quoted]\ncpu = "rv64"\n{key} = "console=\'ttyS0"\n')
    image = tmp_path / "not-even-read.cpio"
    result = invoke("boot", "--config", str(config), "--machine", "quoted", str(image))
    assert_one_line_error(result, 2, f"machine 'quoted': {key}")
    assert "balance its quotes" in result.stderr


@pytest.mark.parametrize("script, message", [
    ("printf 'QEMU emulator version \\377\\376 7.2\\n'", "not a QEMU binary"),
    ("exec sleep 600", "did not answer '--version' within 2 s"),
])
def test_a_qemu_that_answers_badly_or_never_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, message: str) -> None:
    monkeypatch.setattr("rvforge_qemu.qemubin.PROBE_TIMEOUT", 2.0)
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(tmp_path / "cache"))
    qemu = tmp_path / "qemu-system-riscv64"
    qemu.write_text(f"#!/bin/sh\n{script}\n")
    qemu.chmod(0o755)
    result = invoke("machines", "--qemu", str(qemu))
    assert_one_line_error(result, 2, message)
    assert str(qemu) in result.stderr


@pytest.mark.parametrize("args", [
    ["build", "--provider", "local", "--source", "/nonexistent/a\nrvforge: error: forged"],
    ["boot", "--share", "/nonexistent/a\nb:/mnt/x"],
])
def test_an_error_naming_a_file_with_a_newline_is_still_one_line(tmp_path: Path,
                                                                  args: list[str]) -> None:
    image = tmp_path / "image.cpio"
    image.write_bytes(b"070701")  # the share is checked before the image is read
    extra = ["-o", str(tmp_path / "x.tar")] if args[0] == "build" else [str(image)]
    result = invoke(*args, *extra)
    assert_one_line_error(result, 2, "/nonexistent/a\\n")
