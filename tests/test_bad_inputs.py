"""The bad-input corpus through the real CLI: each case exits with its documented code,
prints one line naming the problem (no traceback), and leaves no output file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
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
def test_bad_command_lines(tmp_path: Path, monkeypatch, args: list[str], code: int,
                           message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("--quiet", "build", *args)
    assert_one_line_error(result, code, message)
    assert not (tmp_path / "build").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 needs root")
def test_unwritable_output_directory(alpine_tarball, nobody_can_run_rvforge) -> None:
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
