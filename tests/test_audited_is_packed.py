"""What is audited is what is packed: every host file the tree takes from the user (a
directory overlay's, a single-file overlay's, a Debian package's data.tar) carries the
identity it had when read, and a packer refuses one rewritten since, even in place (same
inode, same size, mtime set back: only the ctime tells). Archive members are read once,
into rvforge's private scratch directory."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rvforge.builtin.auditors.size import SizeAuditor
from rvforge.cli import app
from rvforge.testing import assert_one_line_error


def rewrite_in_place(path: Path) -> None:
    """Other bytes, same inode and size, the mtime set back."""
    before = os.stat(path)
    time.sleep(0.02)  # past the granularity of file timestamps
    with open(path, "r+b") as stream:
        stream.write(bytes(b ^ 0xFF for b in path.read_bytes()))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)


@pytest.fixture
def after_audit(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Files to rewrite in place once the audit has read the tree (the race the third
    battery won against a single-file overlay)."""
    victims: list[Path] = []
    audit = SizeAuditor.audit

    def audit_then_rewrite(self: SizeAuditor, *args: Any, **kwargs: Any) -> Any:
        findings = list(audit(self, *args, **kwargs))
        for path in victims:
            rewrite_in_place(path)
        return findings

    monkeypatch.setattr(SizeAuditor, "audit", audit_then_rewrite)
    yield victims


@pytest.mark.parametrize("suffix", [".cpio.gz", ".tar", ".ext4"])
def test_a_single_file_overlay_rewritten_after_the_audit_is_not_packed(
        tmp_path: Path, after_audit: list[Path], suffix: str) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("hello\n")
    payload = tmp_path / "payload"
    payload.write_bytes(b"A" * 4096)
    after_audit.append(payload)
    result = CliRunner().invoke(app, [
        "--quiet", "build", "--provider", "local", "--source", str(root), "--overlay",
        f"{payload}:/opt/payload", "-o", str(out / f"image{suffix}"), "--isa", "rv64gc"])
    completed = subprocess.CompletedProcess([], result.exit_code, result.stdout,
                                            result.stderr)
    assert_one_line_error(completed, 2, f"{payload}: changed during the build")
    assert not out.exists() or list(out.iterdir()) == []
