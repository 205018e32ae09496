"""Telling what a path holds from its first bytes: a directory, tarball, cpio archive, ELF
file, or a package (wheel or other zip archive, ``.deb``, ``.apk``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rvforge.errors import InputError
from rvforge.formats.compression import open_decompressed, read_up_to

__all__ = ["require_regular", "sniff"]

CPIO_MAGICS = (b"070701", b"070702")
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
DEB_MAGIC = b"!<arch>\ndebian-binary"
APK_FIRST_MEMBERS = (b".SIGN.", b".PKGINFO")
"""An .apk's tar starts with its signature (or, unsigned, its control segment)."""


def require_regular(path: Path, what: str = "input") -> None:
    """Raise :class:`InputError` unless ``path`` (symlinks followed) is a regular file:
    reading a FIFO would block forever, a device would read forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or \
            stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise InputError(f"{path}: is {kind}; the {what} must be a regular file or a "
                         "directory")


def sniff(path: Path) -> str:
    """What ``path`` holds: ``dir``, ``tar``, ``cpio``, ``elf``, ``wheel`` (a zip archive
    named ``*.whl``), ``zip``, ``deb``, ``apk`` or ``unknown``."""
    if path.is_dir():
        return "dir"
    require_regular(path)
    try:
        with open(path, "rb") as raw:
            first = raw.read(len(DEB_MAGIC))
        if first[:4] == b"\x7fELF":
            return "elf"
        if first[:4] in ZIP_MAGICS:
            return "wheel" if path.name.endswith(".whl") else "zip"
        if first == DEB_MAGIC:
            return "deb"
        with open_decompressed(path) as stream:
            head = read_up_to(stream, 512)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Exception:
        return "unknown"
    if head[:6] in CPIO_MAGICS:
        return "cpio"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "apk" if first[:2] == b"\x1f\x8b" and head.startswith(APK_FIRST_MEMBERS) \
            else "tar"
    return "unknown"
