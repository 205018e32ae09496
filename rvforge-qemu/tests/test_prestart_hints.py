"""Which launches rvforge-qemu remembers and starts before the command line is parsed
(:func:`rvforge_qemu.prestart.problem_of`): plain warm runs only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rvforge_qemu.prestart import problem_of, read_hint

QEMU = shutil.which("qemu-system-riscv64") or "/usr/bin/qemu-system-riscv64"
PLAIN = [QEMU, "-machine", "virt", "-cpu", "rv64", "-smp", "2", "-m", "2048M",
         "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-bios",
         "default", "-kernel", "/k", "-initrd", "/i", "-append", "console=ttyS0"]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "qemu" / "snapshots" / ("ab" * 32) / "state.zst"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return path


def test_a_plain_warm_run_and_a_read_only_disk_are_remembered(state: Path,
                                                             tmp_path: Path) -> None:
    assert problem_of(PLAIN, state, tmp_path) is None
    disk = [*PLAIN, "-drive", "file=/a,,b.ext4,format=raw,if=none,id=d,readonly=on",
            "-device", "virtio-blk-pci,drive=d"]
    assert problem_of(disk, state, tmp_path) is None


@pytest.mark.parametrize(("extra", "why"), [
    (["-fsdev", "local,id=s,path=/home"], "-fsdev is not an option"),
    (["-netdev", "user,id=n"], "-netdev is not an option"),
    (["-chardev", "file,id=c,path=/tmp/x"], "-chardev is not an option"),
    (["-S"], "-S is not an option"),
    (["-drive", "file=/d.ext4,format=raw"], "not read-only"),
    (["-drive", "file=/d,,readonly=on,format=raw"], "not read-only"),  # ,, is in the path
    (["-device", "isa-debugcon,chardev=c"], "reaches the host"),
    (["-display", "gtk"], "-display gtk"),
    (["-m"], "-m has no value"),
])
def test_anything_reaching_the_host_is_not(extra: list[str], why: str, state: Path,
                                           tmp_path: Path) -> None:
    assert why in (problem_of([*PLAIN, *extra], state, tmp_path) or "")


def test_only_qemu_and_only_this_caches_snapshots(state: Path, tmp_path: Path) -> None:
    assert "is not a qemu-system-riscv64" in (problem_of(["/bin/sh", *PLAIN[1:]], state,
                                                         tmp_path) or "")
    assert "is not a qemu-system-riscv64" in (problem_of(["qemu-system-riscv64", *PLAIN[1:]],
                                                         state, tmp_path) or "")
    outside = tmp_path / "elsewhere.zst"
    outside.write_bytes(b"")
    assert "is not in" in (problem_of(PLAIN, outside, tmp_path) or "")
    other = state.parent.parent / "x" / "state.zst"
    other.parent.mkdir()
    other.write_bytes(b"")
    assert "is not a snapshot's state" in (problem_of(PLAIN, other, tmp_path) or "")


@pytest.mark.parametrize("content", [b"", b"[]", b"{\"format\": 1}", b"\xff\xfe",
                                     b"{\"format\": 2, \"argv\": [], \"state\": \"\"}",
                                     b"{\"format\": 1, \"argv\": [1], \"state\": \"x\"}",
                                     b" " * (70 << 10)])
def test_a_malformed_hint_is_no_hint(content: bytes, tmp_path: Path) -> None:
    hint = tmp_path / "h.json"
    hint.write_bytes(content)
    hint.chmod(0o600)
    tmp_path.chmod(0o700)
    assert read_hint(hint, tmp_path) is None


def test_a_hint_that_is_a_symlink_or_missing_is_no_hint(state: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"format": 1, "argv": PLAIN, "state": str(state)}))
    real.chmod(0o600)
    tmp_path.chmod(0o700)
    assert read_hint(real, tmp_path) == (PLAIN, state)
    (tmp_path / "link.json").symlink_to(real)
    assert read_hint(tmp_path / "link.json", tmp_path) is None
    assert read_hint(tmp_path / "missing.json", tmp_path) is None
