"""Finding host programs (``qemu-riscv64``...) and quoting QEMU's errors; which
``qemu-system-riscv64`` to run is :mod:`rvforge_qemu.qemubin`'s."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from rvforge import ToolMissingError, UsageError

QEMU_SYSTEM = "qemu-system-riscv64"
QEMU_USER = "qemu-riscv64"
PACKAGES = {QEMU_SYSTEM: "qemu-system-misc", QEMU_USER: "qemu-user"}
"""The Debian/Ubuntu package that installs each program."""
FIRMWARE_PACKAGE = "qemu-system-data"
"""Holds the OpenSBI firmware ``-bios default`` loads."""


def find_tool(name: str) -> Path:
    """The path of host program ``name``; :class:`ToolMissingError` naming the package."""
    found = shutil.which(name)
    if found is None:
        package = PACKAGES.get(name, name)
        raise ToolMissingError(
            f"{name} is not installed (not on PATH): install it with "
            f"`sudo apt-get install --no-install-recommends {package}`"
        )
    return Path(found)


def qemu_reason(stderr: str) -> str:
    """QEMU's own error message from its stderr (``unable to find CPU model 'x'``)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [re.sub(r"^qemu-(system-riscv64|riscv64):\s*", "", line) for line in lines
              if re.match(r"qemu-(system-riscv64|riscv64): ", line)
              and ": info:" not in line]
    return "; ".join(errors) or (lines[-1] if lines else "no message")


_GDB_PORT_BUSY = re.compile(r"-gdb tcp:[0-9.]+:([0-9]+): Failed to find an available port")
_FORWARD_BUSY = re.compile(
    r"Could not set up host forwarding rule 'tcp:[0-9.]+:([0-9]+)-:([0-9]+)'")


def startup_error(stderr: str, what: str) -> Exception:
    """The error for QEMU refusing to start: a missing firmware is a missing tool (exit
    125); a port in use (the gdbstub's, a forward's) says so and how to pick another;
    anything else is a bad setting, quoted."""
    if found := _GDB_PORT_BUSY.search(stderr):
        return UsageError(f"{what}: the gdbstub's port {found[1]} on 127.0.0.1 is in use "
                          "(another QEMU or debugger?): pick a free one with --gdb-port N")
    if found := _FORWARD_BUSY.search(stderr):
        return UsageError(f"{what}: --forward {found[1]}:{found[2]}: port {found[1]} on "
                          "127.0.0.1 is in use: forward another host port")
    reason = qemu_reason(stderr)
    if "firmware" in reason.lower() and "opensbi" in reason.lower():
        return ToolMissingError(
            f"{what}: QEMU cannot load its default firmware ({reason}): install it with "
            f"`sudo apt-get install --no-install-recommends {FIRMWARE_PACKAGE}` or set the "
            "machine's bios"
        )
    return UsageError(f"{what}: QEMU refused to start: {reason}")
