"""Debian binary packages (``.deb``), read in memory for the audit.

A ``.deb`` is an ``ar`` archive (``!<arch>\\n``, then 60-byte member headers: name, mtime,
uid, gid, mode, size in decimal, ``\\x60\\n``; members padded to even offsets) holding
``debian-binary`` (``2.0``), ``control.tar.*`` and ``data.tar.*`` (deb(5)). The data
tarball, of any compression dpkg writes (none, gzip, xz, zstd, bzip2), is streamed into the
package tree (:class:`~rvforge.formats.packages.MemberSink`); nothing is unpacked to disk.
"""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import InputError
from rvforge.formats.compression import decompress_stream, detect
from rvforge.formats.packages import MemberSink, Package, read_tar_members
from rvforge.numbers import is_decimal
from rvforge.tree import FileWindow

__all__ = ["ar_members", "read_deb"]

AR_MAGIC = b"!<arch>\n"
_HEADER = 60


def ar_members(raw: BinaryIO, size: int, path: Path) -> dict[str, tuple[int, int]]:
    """The members of the ar archive ``raw`` (``size`` bytes): name → (offset, size)."""
    if raw.read(len(AR_MAGIC)) != AR_MAGIC:
        raise InputError(f"{path}: not a Debian package (no ar header)")
    members: dict[str, tuple[int, int]] = {}
    offset = len(AR_MAGIC)
    while offset < size:
        raw.seek(offset)
        header = raw.read(_HEADER)
        if len(header) < _HEADER or header[58:60] != b"`\n":
            raise InputError(f"{path}: truncated or corrupt .deb (member header at {offset})")
        name = header[:16].decode("ascii", "replace").rstrip().rstrip("/")
        length_text = header[48:58].decode("ascii", "replace").strip()
        if not is_decimal(length_text):
            raise InputError(f"{path}: corrupt .deb (member {name!r} has no size)")
        length = int(length_text)
        start = offset + _HEADER
        if length < 0 or start + length > size:
            raise InputError(f"{path}: truncated .deb (member {name!r} claims {length} bytes, "
                             f"{max(0, size - start)} are there); download it again")
        members[name] = (start, length)
        offset = start + length + (length & 1)
    return members


def read_deb(path: Path) -> Package:
    """Read the ``.deb`` at ``path``: its ``data.tar.*`` members into a package tree."""
    package = Package(path, "deb")
    with open(path, "rb") as raw:
        size = raw.seek(0, 2)
        raw.seek(0)
        members = ar_members(raw, size, path)
        if members.get("debian-binary") is None:
            raise InputError(f"{path}: not a Debian package (no debian-binary member)")
        data = [name for name in members if name.startswith("data.tar")]
        if len(data) != 1:
            raise InputError(f"{path}: not a Debian package ({len(data)} data.tar members)")
        start, length = members[data[0]]
        window: BinaryIO = FileWindow(raw, start, length)  # type: ignore[assignment]
        head = window.read(6)
        window.seek(0)
        kind = detect(head)
        if kind is None and data[0].endswith(".lzma"):
            stream: BinaryIO = lzma.LZMAFile(window, format=lzma.FORMAT_ALONE)  # type: ignore[assignment]
        else:
            stream = decompress_stream(window, kind)
        try:
            archive = tarfile.open(fileobj=stream, mode="r|")
        except (tarfile.TarError, EOFError, lzma.LZMAError, OSError) as error:
            raise InputError(f"{path}: truncated or corrupt {data[0]} ({error})") from None
        with archive:
            read_tar_members(archive, MemberSink(package))
    return package
