"""Values that become modes, owners and path components are checked against their grammar
first: an overlay mode, a pax header's ids, a provider option that names the default output,
a machine name that names a console log. Each is exit 2 with one line naming it, and
nothing is written outside the output directory."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.testing import assert_one_line_error

from rvforge_qemu.console import new_log_path


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, ["--quiet", *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("mode", ["-1", "8", "07777777", "0x1ed", "٧٥٥", "7 5 5", ""])
def test_an_overlay_mode_that_is_not_octal_permissions_is_one_line(
        tmp_path: Path, mode: str) -> None:
    """``mode = "-1"`` once gave 07777: setuid, setgid, sticky, world-writable."""
    (tmp_path / "root").mkdir()
    (tmp_path / "payload").write_text("x")
    config = tmp_path / "rvforge.toml"
    config.write_text(f'[[overlay]]\nname = "file"\nsource = "{tmp_path / "payload"}"\n'
                      f'dest = "/opt/payload"\nmode = "{mode}"\n')
    before = files_under(tmp_path)
    result = invoke("build", "--config", str(config), "--provider", "local", "--source",
                    str(tmp_path / "root"), "-o", str(tmp_path / "out" / "x.tar"),
                    "--isa", "rv64gc")
    assert_one_line_error(result, 2, "mode")
    assert "octal" in result.stderr
    assert files_under(tmp_path) - before <= {tmp_path / "out"}


@pytest.mark.parametrize("key, value", [("uid", "1e3"), ("gid", "0x10"), ("uid", "²"),
                                        ("uid", " 5"), ("uid", "")])
def test_a_pax_id_that_is_not_a_number_is_refused_not_made_root(
        tmp_path: Path, key: str, value: str) -> None:
    """tarfile turns a malformed pax number into 0 (GNU tar refuses it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("etc/f")
        info.size, info.pax_headers = 1, {key: value}
        archive.addfile(info, io.BytesIO(b"x"))
    source = tmp_path / "rootfs.tar"
    source.write_bytes(buffer.getvalue())
    result = invoke("build", "--provider", "local", "--source", str(source), "-o",
                    str(tmp_path / "out" / "x.tar"), "--no-audit", "--isa", "rv64gc")
    assert_one_line_error(result, 2, f"has the pax {key} {value!r}, not a whole number")
    assert "'etc/f'" in result.stderr


@pytest.mark.parametrize("release", ["../../../x", "a/b", "..", "/abs", "x\ny"])
def test_a_release_that_would_leave_the_default_output_directory_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release: str) -> None:
    """``--release ../../../x`` wrote ``./x-riscv64.cpio.gz`` and made ``build/local-..``."""
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    (tmp_path / "root").mkdir()
    monkeypatch.chdir(work)
    before = files_under(tmp_path)
    result = invoke("build", "--provider", "local", "--source", str(tmp_path / "root"),
                    "--release", release, "--no-audit", "--isa", "rv64gc")
    assert_one_line_error(result, 2, "is not a plain file name; pass -o PATH")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("stem", ["img-virt/../../escaped", "../x", "a/b", "[*]", ".."])
def test_a_machine_name_never_moves_the_console_log_out_of_its_directory(
        tmp_path: Path, stem: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = new_log_path(logs, stem)
    assert path.parent == logs and "/" not in path.name and not path.name.startswith(".")


def test_relative_paths_in_a_config_file_are_relative_to_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As other tools read theirs: not the current directory's (which the build ran in)."""
    conf = tmp_path / "project"
    (conf / "root").mkdir(parents=True)
    (conf / "root" / "f").write_text("x")
    (conf / "payload").write_text("payload\n")
    (conf / "rvforge.toml").write_text(
        '[build]\nprovider = "local"\noutput = "out/image.tar"\n'
        '[provider]\nsource = "root"\n'
        '[[overlay]]\nname = "file"\nsource = "payload"\ndest = "/opt/payload"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("build", "--config", str(conf / "rvforge.toml"), "--no-audit",
                    "--isa", "rv64gc")
    assert result.returncode == 0, result.stderr
    with tarfile.open(conf / "out" / "image.tar") as archive:
        names = {m.name.removeprefix("./") for m in archive.getmembers()}
    assert {"f", "opt/payload"} <= names
    assert list(elsewhere.iterdir()) == []
