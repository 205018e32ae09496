"""Debian binary packages (``.deb``), read in memory for the audit.

A ``.deb`` is an ``ar`` archive (:mod:`rvforge.formats.ar`) holding
``debian-binary`` (``2.0``), ``control.tar.*`` and ``data.tar.*`` (deb(5)). The data
tarball, of any compression dpkg writes (none, gzip, xz, zstd, bzip2), is streamed into the
package tree (:class:`~rvforge.formats.package.MemberSink`); nothing is unpacked to disk.
"""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import InputError
from rvforge.formats.ar import ar_members
from rvforge.formats.compression import decompress_stream, detect
from rvforge.formats.package import MemberSink, Package, read_tar_members
from rvforge.tree import FileWindow

__all__ = ["ar_members", "read_deb"]


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
        start, length = members[data[0]].offset, members[data[0]].size
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
