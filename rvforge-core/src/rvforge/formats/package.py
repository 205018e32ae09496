"""A package read for auditing (:class:`Package`) and what every package reader shares: the
member sink that keeps ELF members in memory and enforces the size limits, the tar member
streamer (``.deb`` and ``.apk`` data are tarballs), and the limits themselves.

The readers (:mod:`~rvforge.formats.wheel`, :mod:`~rvforge.formats.deb`,
:mod:`~rvforge.formats.apk`) import this module; :mod:`rvforge.formats.packages` picks the
reader for a kind. Neither imports the other.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import InputError
from rvforge.formats.compression import is_corrupt_stream_error
from rvforge.riscv.elf import ELF_MAGIC
from rvforge.tree import Entry, EntryKind, InlineBytes, Tree, normalize

__all__ = ["CHUNK", "MAX_ELF_BYTES", "MAX_RATIO", "MAX_UNPACKED", "MemberSink", "Package",
           "read_tar_members"]

MAX_UNPACKED = 16 << 30
"""Bytes a package may unpack to (the largest riscv64 wheels and .debs hold ~2 GiB)."""
MAX_ELF_BYTES = 8 << 30
"""Bytes of ELF members held in memory for one package."""
MAX_RATIO = 1100
"""Largest uncompressed/compressed ratio a member may declare: deflate cannot exceed
~1032:1, so more is a zip bomb or a lie."""
CHUNK = 1 << 20



@dataclass
class Package:
    """A package read for auditing.

    :param path: the file.
    :param kind: ``wheel``, ``zip``, ``deb`` or ``apk``.
    :param tree: its ELF members and links (see the module docstring).
    :param members: regular files it holds.
    :param platforms: a wheel's platform tags (``manylinux_2_31_riscv64``), else empty.
    """

    path: Path
    kind: str
    tree: Tree = field(default_factory=Tree)
    members: int = 0
    platforms: tuple[str, ...] = ()


class MemberSink:
    """Collects a package's members into its tree, enforcing the size limits."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.unpacked = 0
        self.held = 0

    def name(self, raw: str) -> tuple[str, str]:
        """The tree path of member ``raw`` and how messages name it; refuses absolute
        names and ``..`` (:class:`~rvforge.errors.UnsafePathError`)."""
        who = f"{self.package.path}: member {raw!r}"
        if raw.startswith("/"):
            raise InputError(f"{who} has an absolute name; refusing the package")
        return normalize(raw, member=who), who

    def file(self, raw: str, stream: BinaryIO, mode: int = 0o644) -> bytes | None:
        """Read member ``raw`` from ``stream``; keep it when it is an ELF file. Returns its
        bytes when kept (else ``None``)."""
        path, who = self.name(raw)
        self.package.members += 1
        head = stream.read(4)
        self._count(len(head), who)
        if head != ELF_MAGIC:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                self._count(len(chunk), who)
            return None
        parts = [head]
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            self._count(len(chunk), who)
            parts.append(chunk)
        data = b"".join(parts)
        self.held += len(data)
        if self.held > MAX_ELF_BYTES:
            raise InputError(f"{self.package.path}: its ELF members exceed "
                             f"{MAX_ELF_BYTES >> 30} GiB; audit it unpacked (rvforge audit DIR)")
        self.package.tree.add_file(path, InlineBytes(data), mode=mode & 0o7777 or 0o644)
        return data

    def symlink(self, raw: str, target: str) -> None:
        path, who = self.name(raw)
        self.package.tree.add(Entry(path, EntryKind.SYMLINK, 0o777, target=target), member=who)

    def _count(self, size: int, who: str) -> None:
        self.unpacked += size
        if self.unpacked > MAX_UNPACKED:
            raise InputError(f"{who}: the package unpacks to more than "
                             f"{MAX_UNPACKED >> 30} GiB: a zip bomb or not a real package")


def read_tar_members(archive: tarfile.TarFile, sink: MemberSink, *,
                     skip: tuple[str, ...] = ()) -> None:
    """Stream the members of ``archive`` (opened ``r|``) into ``sink``; names starting
    with one of ``skip`` (control members) are read past. A truncated or corrupt stream
    is an :class:`InputError` naming the package."""
    try:
        for member in archive:
            name = member.name
            bare = name[2:] if name.startswith("./") else name
            if skip and "/" not in bare and bare.startswith(skip):
                continue
            if member.isreg():
                stream = archive.extractfile(member)
                assert stream is not None
                sink.file(name, stream, member.mode)  # type: ignore[arg-type]
            elif member.issym():
                sink.symlink(name, member.linkname)
            else:
                sink.name(name)  # directories, hard links, devices: validated, not kept
    except (tarfile.TarError, EOFError) as error:
        raise InputError(f"{sink.package.path}: truncated or corrupt package ({error})"
                         ) from None
    except InputError:
        raise
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{sink.package.path}: truncated or corrupt package ({error})"
                             ) from None
        raise
