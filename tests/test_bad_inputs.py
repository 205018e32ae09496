"""The bad-input corpus through the real CLI: each case exits with its documented code,
prints one line naming the problem (no traceback), and leaves no output file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fixture_types import RiscvCC, RunRvforge
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.testing import assert_one_line_error

CORPUS = Path(__file__).resolve().parent / "bad_inputs"

TARBALL_CASES = {
    "truncated.tar.gz": "truncated or corrupt archive",
    "corrupt.tar.gz": "truncated or corrupt archive",
    "not-a-tarball.tar.gz": "not a tarball rvforge can read",
    "empty.tar": "not a tarball rvforge can read",
    "dotdot-member.tar": "member './../../evil': path contains '..'",
    "absolute-member.tar": "member '/etc/cron.d/evil' has an absolute name",
    "escaping-symlink.tar": "member './etc/evil': symlink target '../../../../../root/.ssh' "
                            "escapes the root filesystem",
    "absolute-hardlink.tar": "is a hardlink to the absolute path '/etc/shadow'",
    "escaping-hardlink.tar": "(hardlink target '../../etc/passwd'): path contains '..'",
}


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in-process (as the ``rvforge`` script would) and capture its streams."""
    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.mark.parametrize("name", sorted(TARBALL_CASES))
def test_bad_tarball_source(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out" / "image.cpio.gz"
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                         str(CORPUS / name), "-o", str(out))
    assert_one_line_error(result, 2, TARBALL_CASES[name])
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("name", sorted(TARBALL_CASES))
def test_bad_tarball_audit(name: str) -> None:
    result = invoke("--quiet", "audit", str(CORPUS / name))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, code, message", [
    (["--provider", "alpin"], 2, "unknown provider 'alpin' (known: alpine, "),
    (["--provider", "local", "--source", "/nonexistent/rootfs.tar"], 2,
     "/nonexistent/rootfs.tar: no such file or directory (check --source)"),
    (["--provider", "local", "--source", ".", "--packer", "cpoi"], 2,
     "unknown packer 'cpoi'"),
    (["--provider", "local", "--source", ".", "-o", "x.zip"], 2, "no packer writes 'x.zip'"),
    (["--provider", "local", "--release", "1", "--variant", "minbase"], 2,
     "provider 'local' does not take --variant"),
    (["--provider", "local", "--source", ".", "--overlay", "nowhere"], 2,
     "expected SRC:DEST"),
    (["--provider", "local", "--source", ".", "--machine", "qemu-vrit"], 2,
     "unknown machine 'qemu-vrit'"),
    (["--provider", "local", "--source", ".", "--config", str(CORPUS / "bad-syntax.toml")], 2,
     "invalid TOML"),
    (["--provider", "local", "--source", ".", "--config", str(CORPUS / "unknown-key.toml")],
     2, "unknown key 'provder'"),
    (["--provider", "local", "--source", ".", "-o", "/dev/null/x.cpio.gz"], 2,
     "/dev/null"),
])
def test_bad_command_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int,
        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("--quiet", "build", *args)
    assert_one_line_error(result, code, message)
    assert not (tmp_path / "build").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 needs root")
def test_unwritable_output_directory(alpine_tarball: Path, nobody_can_run_rvforge: Path) -> None:
    """As an unprivileged user (uid 65534), a read-only output directory is a clear error."""
    base = Path(tempfile.mkdtemp(prefix="rvforge-nobody-"))
    try:
        base.chmod(0o755)
        source = base / "rootfs.tar.gz"
        shutil.copyfile(alpine_tarball, source)
        source.chmod(0o644)
        home, out_dir = base / "home", base / "readonly"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        out_dir.mkdir(mode=0o555)
        exe = str(nobody_can_run_rvforge)
        result = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", exe,
             "--quiet", "build", "--provider", "local", "--source", str(source),
             "-o", str(out_dir / "x.cpio.gz"), "--no-audit"],
            capture_output=True, text=True,
            env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
                 "TMPDIR": str(home)})
        assert_one_line_error(result, 2, f"{out_dir / 'x.cpio.gz'}: cannot write")
        assert list(out_dir.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- issue 11: trust edges ------------------------------------------------------------------

EDGE_TARBALLS = {
    "chain-symlink.tar": "member './a/x': symlink target 'a/a/a/up/../../etc/passwd' escapes "
                         "the root filesystem through the tree's other symlinks",
    "chain-symlink-late.tar": "/a/x: symlink target 'up/../etc/passwd' escapes the root "
                              "filesystem through the tree's other symlinks",
    "pax-mtime-inf.tar": "member './etc/f' has the mtime inf, not a time",
    "pax-mtime-nan.tar": "member './etc/f' has the mtime nan, not a time",
    "pax-mtime-1e300.tar": "member './etc/f' has the mtime 1e+300, not a time",
    "device-major-2e40.tar": "'/dev/huge': device number 1099511627776,1 is outside Linux's "
                             "dev_t",
    "negative-uid.tar": "'/etc/f': uid -7 cannot be written to cpio",
    "pax-negative-uid.tar": "'/etc/f': uid -7 cannot be written to cpio",
    "name-over-path-max.tar": "bytes, over the kernel's PATH_MAX (4096, NUL included)",
}


@pytest.mark.parametrize("name", sorted(EDGE_TARBALLS))
def test_trust_edge_tarball_is_refused_at_build_time(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out" / "image.cpio.gz"
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                    str(CORPUS / name), "-o", str(out), "--no-audit", "--isa", "rv64gc")
    assert_one_line_error(result, 2, EDGE_TARBALLS[name])
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("packer", ["tar", "ext4"])
@pytest.mark.parametrize("name", ["device-major-2e40.tar", "negative-uid.tar",
                                  "name-over-path-max.tar"])
def test_every_writer_checks_header_widths(tmp_path: Path, name: str, packer: str) -> None:
    out = tmp_path / f"image.{packer}"
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                    str(CORPUS / name), "-o", str(out), "--no-audit", "--isa", "rv64gc")
    assert_one_line_error(result, 2, EDGE_TARBALLS[name].replace("cpio", packer))
    assert list(tmp_path.iterdir()) == []


def test_a_tree_deeper_than_the_recursion_limit_builds(tmp_path: Path) -> None:
    out = tmp_path / "deep.tar"
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                    str(CORPUS / "nested-1200.tar.gz"), "-o", str(out), "--no-audit",
                    "--isa", "rv64gc")
    assert result.returncode == 0, result.stderr
    listing = invoke("inspect", str(out))
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 1200 + 4


CONFIG_CASES = {
    "bad-utf8.toml": "invalid TOML: not UTF-8 (byte 20)",
    "deep-nesting.toml": "invalid TOML",
    "output-number.toml": "[build] output must be a string (a path), not 5",
    "provider-list.toml": "[build] provider must be a string, not ['local']",
    "auditors-numbers.toml": "[build] auditors must be an array of strings, not [1, 2]",
    "auditors-string.toml": "[build] auditors must be an array of strings, not 'isa'",
    "init-string.toml": "[build] init must be true or false, not 'false'",
    "memory-huge.toml": "[machines.big] memory must be a whole number of MiB from 1",
    "memory-zero.toml": "[machines.big] memory must be a whole number of MiB from 1 to "
                        "16777216, not 0",
    "cpus-zero.toml": "[machines.big] cpus must be a whole number of CPUs from 1",
    "overlay-uid-float.toml": "--uid wants a whole number, not 1.5",
    "overlay-uid-negative.toml": "'/etc/x': uid -1 cannot be written to cpio",
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_values_are_checked_by_type_and_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "root").mkdir()
    result = invoke("--quiet", "build", "--provider", "local", "--source", "root",
                    "--config", str(CORPUS / name), "-o", "x.cpio", "--isa", "rv64gc",
                    "--no-audit")
    assert_one_line_error(result, 2, CONFIG_CASES[name])
    if "[" in CONFIG_CASES[name] or "TOML" in CONFIG_CASES[name]:
        assert str(CORPUS / name) in result.stderr  # names the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


@pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
def test_an_output_that_is_not_a_regular_file_is_left_alone(tmp_path: Path,
                                                           kind: str) -> None:
    (tmp_path / "root").mkdir()
    target = tmp_path / "victim"
    target.write_text("keep me")
    out = {"fifo": tmp_path / "fifo.cpio", "symlink": tmp_path / "link.cpio",
           "device": Path("/dev/null")}[kind]
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "symlink":
        out.symlink_to(target)
    before = os.lstat(out)
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                    str(tmp_path / "root"), "-o", str(out), "--packer", "cpio", "--no-audit",
                    "--isa", "rv64gc")
    assert_one_line_error(result, 2, f"{out}: exists and is a")
    after = os.lstat(out)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert target.read_text() == "keep me"
    assert not list(out.parent.glob(f".{out.name}.*.part"))


@pytest.mark.parametrize("command", [
    ["build", "--provider", "local", "--source", "{fifo}", "-o", "{tmp}/x.cpio"],
    ["audit", "{fifo}"],
    ["inspect", "{fifo}"],
    ["build", "--provider", "local", "--source", "{tmp}", "--config", "{fifo}",
     "-o", "{tmp}/x.cpio"],
])
def test_a_fifo_given_as_input_is_refused_not_read(tmp_path: Path, command: list[str]
                                                   ) -> None:
    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    args = [a.replace("{fifo}", str(fifo)).replace("{tmp}", str(tmp_path)) for a in command]
    result = invoke("--quiet", *args)
    assert_one_line_error(result, 2, str(fifo))
    assert "FIFO" in result.stderr or "not a regular file" in result.stderr


@pytest.mark.parametrize("value, message", [
    ("nan", "--timeout wants a finite number, not nan"),
    ("inf", "--timeout wants a finite number, not inf"),
    ("-1", "--timeout wants a number of seconds above 0, not -1.0"),
    ("0", "--timeout wants a number of seconds above 0"),
])
def test_a_timeout_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: str,
                                                            message: str) -> None:
    image = tmp_path / "image.cpio"
    image.write_bytes(b"")
    result = invoke("boot", str(image), "--timeout", value, "--machine", "qemu-virt")
    assert_one_line_error(result, 2, message)


def test_names_with_line_breaks_are_escaped_in_text_output(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "evil\nname").write_text("x")
    (root / "term\x1b[2J").symlink_to("target\nline")
    result = invoke("inspect", str(root))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[1].endswith(" /evil\\nname")
    assert lines[2].endswith(" /term\\x1b[2J -> target\\nline")


def test_overlaying_a_symlinked_directory_copies_the_directory(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    real = tmp_path / "payload"
    real.mkdir()
    (real / "file").write_text("data")
    (tmp_path / "link").symlink_to(real)
    out = tmp_path / "image.tar"
    result = invoke("--quiet", "build", "--provider", "local", "--source",
                    str(tmp_path / "root"), "--overlay", f"{tmp_path / 'link'}:/opt/p",
                    "-o", str(out), "--no-audit", "--isa", "rv64gc")
    assert result.returncode == 0, result.stderr
    listing = invoke("inspect", str(out)).stdout
    assert " /opt/p/file" in listing and str(tmp_path) not in listing


def test_a_missing_argument_is_one_line(rvforge_cli: RunRvforge) -> None:
    result = rvforge_cli("inspect")
    assert_one_line_error(result, 2, "Missing argument")
    assert "rvforge inspect --help" in result.stderr


def test_names_with_line_breaks_are_escaped_in_audit_text(
        tmp_path: Path, riscv_cc: RiscvCC) -> None:
    root = tmp_path / "root"
    root.mkdir()
    vector = riscv_cc.program("vsetvli", "vsum", "-static", "-march=rv64gcv")
    shutil.copy(vector, root / "evil\nbin")  # V on qemu-virt: an error naming the file
    result = invoke("audit", str(root))
    assert result.returncode == 3, result.stderr
    assert "/evil\\nbin" in result.stdout
    assert "bin" not in result.stdout.splitlines()
