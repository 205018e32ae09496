"""When a QEMU start is watched for a stalled kernel (see test_boot.py for the real stall)."""

from __future__ import annotations

import pytest

from rvforge_qemu.prepared import kernel_speaks

BASE = ["qemu-system-riscv64", "-kernel", "vmlinux"]


@pytest.mark.parametrize(("argv", "watched"), [
    ([*BASE, "-append", "console=ttyS0 rdinit=/init"], True),
    ([*BASE, "-append", "console=ttyS0 quiet"], False),  # the kernel prints nothing
    ([*BASE, "-append", "console=ttyS0 loglevel=1"], False),
    ([*BASE, "-S", "-append", "console=ttyS0"], False),  # the CPUs wait for a debugger
    ([*BASE, "-append", "console=ttyS0 quietly=1"], True),
])
def test_a_start_is_watched_only_where_the_kernel_speaks_at_once(
        argv: list[str], watched: bool) -> None:
    assert kernel_speaks(argv) is watched
