"""Finding QEMU on the host, asking it what it is, and quoting its errors."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
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


def qemu_version(binary: Path) -> str:
    """QEMU's version string (``7.2.22``) of ``binary``."""
    return _version(str(binary), binary.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _version(binary: str, _mtime: int) -> str:
    text = subprocess.run([binary, "--version"], check=False, capture_output=True,
                          text=True).stdout
    match = re.search(r"version (\S+)", text)
    return match.group(1) if match else text.strip().splitlines()[0] if text.strip() else "?"


def cpu_models(binary: Path) -> frozenset[str]:
    """The ``-cpu`` model names ``binary`` knows (``rv64``, ``max``, ``rva23s64``...)."""
    return _cpu_models(str(binary), binary.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cpu_models(binary: str, _mtime: int) -> frozenset[str]:
    text = subprocess.run([binary, "-cpu", "help"], check=False, capture_output=True,
                          text=True).stdout
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def qemu_reason(stderr: str) -> str:
    """QEMU's own error message from its stderr (``unable to find CPU model 'x'``)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [re.sub(r"^qemu-(system-riscv64|riscv64):\s*", "", line) for line in lines
              if re.match(r"qemu-(system-riscv64|riscv64): ", line)
              and ": info:" not in line]
    return "; ".join(errors) or (lines[-1] if lines else "no message")


def startup_error(stderr: str, what: str) -> Exception:
    """The error for QEMU refusing to start: a missing firmware is a missing tool (exit
    125); anything else is a bad setting, quoted."""
    reason = qemu_reason(stderr)
    if "firmware" in reason.lower() and "opensbi" in reason.lower():
        return ToolMissingError(
            f"{what}: QEMU cannot load its default firmware ({reason}): install it with "
            f"`sudo apt-get install --no-install-recommends {FIRMWARE_PACKAGE}` or set the "
            "machine's bios"
        )
    return UsageError(f"{what}: QEMU refused to start: {reason}")
