"""The bad-input corpus through the real CLI: each case exits with its documented code,
prints one line naming the problem (no traceback), and leaves no output file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int,
                          message: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("rvforge: error: "), result.stderr
    assert message in lines[0]


@pytest.mark.parametrize("name", sorted(TARBALL_CASES))
def test_bad_tarball_source(rvforge_cli, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out" / "image.cpio.gz"
    result = rvforge_cli("--quiet", "build", "--provider", "local", "--source",
                         str(CORPUS / name), "-o", str(out))
    assert_one_line_error(result, 2, TARBALL_CASES[name])
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("name", sorted(TARBALL_CASES))
def test_bad_tarball_audit(rvforge_cli, name: str) -> None:
    result = rvforge_cli("--quiet", "audit", str(CORPUS / name))
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
def test_bad_command_lines(rvforge_cli, tmp_path: Path, args: list[str], code: int,
                           message: str) -> None:
    result = rvforge_cli("--quiet", "build", *args, cwd=tmp_path)
    assert_one_line_error(result, code, message)
    assert not (tmp_path / "build").exists()


def test_unwritable_output_directory(rvforge_cli, tmp_path: Path, alpine_tarball) -> None:
    """As an unprivileged user (uid 65534), a read-only output directory is a clear error."""
    out_dir = tmp_path / "readonly"
    out_dir.mkdir()
    os.chmod(out_dir, 0o555)
    os.chmod(tmp_path, 0o755)
    source = tmp_path / "rootfs.tar.gz"
    source.write_bytes(alpine_tarball.read_bytes())
    os.chmod(source, 0o644)
    exe = str(Path(sys.executable).with_name("rvforge"))
    result = subprocess.run(
        ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", exe, "--quiet",
         "build",
         "--provider", "local", "--source", str(source), "-o", str(out_dir / "x.cpio.gz"),
         "--no-audit"],
        capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path),
                                             "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert_one_line_error(result, 2, "cannot write")
    assert list(out_dir.iterdir()) == []
