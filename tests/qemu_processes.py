"""Which QEMU processes are alive: the boot tests' check that nothing outlives a run."""

from __future__ import annotations

import os
from pathlib import Path


def qemu_running_with(path: Path) -> list[int]:
    """Pids of live QEMU processes (system or user mode) whose command line mentions
    ``path``; rvforge itself, whose flags may name QEMU, is not one."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()  # empty for a zombie
        except OSError:
            continue
        program = os.path.basename(cmdline.split(b"\0", 1)[0])
        if b"qemu" in program and str(path).encode() in cmdline:
            pids.append(int(proc.name))
    return pids
