"""Which QEMU processes are alive: the boot tests' check that nothing outlives a run."""

from __future__ import annotations

import os
from pathlib import Path


def qemu_running_with(path: Path) -> list[int]:
    """Pids of live QEMU processes (system or user mode) whose command line mentions
    ``path``. rvforge itself, whose flags may name QEMU, is not one; nor is a child QEMU
    forked for a snapshot's ``exec:`` migration (QEMU's command line until it execs)."""
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()  # empty for a zombie
            parent = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        program = os.path.basename(cmdline.split(b"\0", 1)[0])
        if b"qemu" in program and str(path).encode() in cmdline:
            found[int(proc.name)] = parent
    return sorted(pid for pid, parent in found.items() if parent not in found)


def guest_running(log_text: str, path: Path) -> bool:
    """Whether a run's guest is up: its console says ready and its QEMU is alive (a
    restored run's console log replays the saved boot, ready marker included, before
    its QEMU starts)."""
    return "RVFORGE-READY" in log_text and bool(qemu_running_with(path))
