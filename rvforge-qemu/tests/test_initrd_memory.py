"""QEMU 7.2 refuses a large -initrd when RAM is just above 2178 MiB; the launcher raises
the VM's memory instead. Checked against the installed qemu-system-riscv64."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rvforge_qemu.prepared import INITRD_ADDRESS_MB, memory_for_initrd

MiB = 1 << 20


def qemu_loads_initrd(tmp_path: Path, memory_mb: int, initrd: Path) -> bool:
    kernel = tmp_path / "kernel"
    kernel.write_bytes(b"\x00" * 4096)  # loaded as a raw image; never runs
    try:
        result = subprocess.run(
            ["qemu-system-riscv64", "-M", "virt", "-m", f"{memory_mb}M", "-bios", "none",
             "-kernel", str(kernel), "-initrd", str(initrd), "-display", "none", "-S",
             "-nodefaults"], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        return True  # loaded everything and sat waiting (-S): accepted
    return "could not load ramdisk" not in result.stderr


def test_memory_is_raised_only_where_qemu_would_refuse() -> None:
    size = 656 * MiB
    assert memory_for_initrd(2048, size) == 2048  # at or below the address: no cap
    assert memory_for_initrd(2664, size) == INITRD_ADDRESS_MB + 656 + 64
    assert memory_for_initrd(8192, size) == 8192


@pytest.mark.qemu
def test_raised_memory_lets_qemu_load_a_large_initrd(tmp_path: Path) -> None:
    initrd = tmp_path / "big.cpio"
    with open(initrd, "wb") as stream:
        stream.truncate(656 * MiB)
    version = subprocess.run(["qemu-system-riscv64", "--version"], capture_output=True,
                             text=True).stdout
    if "version 7.2" in version:
        assert not qemu_loads_initrd(tmp_path, 2664, initrd)  # the bug, as measured here
    assert qemu_loads_initrd(tmp_path, memory_for_initrd(2664, 656 * MiB), initrd)
