"""Telling what a path holds from its first bytes: a directory, tarball, cpio archive or ELF."""

from __future__ import annotations

from pathlib import Path

from rvforge.errors import InputError
from rvforge.formats.compression import open_decompressed

__all__ = ["sniff"]

CPIO_MAGICS = (b"070701", b"070702")


def sniff(path: Path) -> str:
    """What ``path`` holds: ``dir``, ``tar``, ``cpio``, ``elf`` or ``unknown``."""
    if path.is_dir():
        return "dir"
    try:
        with open(path, "rb") as raw:
            if raw.read(4) == b"\x7fELF":
                return "elf"
        with open_decompressed(path) as stream:
            head = stream.read(512)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Exception:
        return "unknown"
    if head[:6] in CPIO_MAGICS:
        return "cpio"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"
