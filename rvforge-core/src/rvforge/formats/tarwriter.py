"""Deterministic tar archives of a :class:`~rvforge.Tree` (pax format, streamed).

Members are written in :meth:`Tree.walk` order as ``./path`` (what ``tar -C ROOT -cf OUT
.`` writes), with numeric owners only (no user or group names, so no host lookup), modes
including setuid/sticky bits, device nodes, fifos, and mtimes clamped to
``SOURCE_DATE_EPOCH``. The names of a hardlinked file become one regular member (the first
name in walk order) and link members pointing at it, as tar requires. Names and link
targets longer than ustar allows get pax extended headers. ``/dev/console`` and
``/dev/null`` are added when missing, as in a cpio initramfs.
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from rvforge.formats.cpio import BLOCK
from rvforge.formats.entries import check_header_fields, read_content, with_device_nodes
from rvforge.progress import Task
from rvforge.tree import Entry, EntryKind, Tree

__all__ = ["write_tar"]

_TYPES = {
    EntryKind.DIR: tarfile.DIRTYPE,
    EntryKind.SYMLINK: tarfile.SYMTYPE,
    EntryKind.CHAR: tarfile.CHRTYPE,
    EntryKind.BLOCK: tarfile.BLKTYPE,
    EntryKind.FIFO: tarfile.FIFOTYPE,
}


def write_tar(tree: Tree, out: BinaryIO, *, epoch: int, progress: Task | None = None
              ) -> None:
    """Write ``tree`` to ``out`` as a pax tar archive.

    :param epoch: ``SOURCE_DATE_EPOCH``: later mtimes are written as this.
    :param progress: advanced by the bytes of file data written.
    """
    tree = with_device_nodes(tree)
    first_name: dict[str, str] = {}  # data entry path -> tar name of its first member
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as archive:
        archive.copybufsize = BLOCK  # type: ignore[attr-defined]  # typeshed lacks it
        for entry in tree.walk():
            check_header_fields(entry, "tar")
            info = _info(tree, entry, epoch)
            if entry.kind not in (EntryKind.FILE, EntryKind.HARDLINK):
                archive.addfile(info)
                continue
            data = tree.data_entry(entry)
            if data.path in first_name:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first_name[data.path], 0
                archive.addfile(info)
                continue
            first_name[data.path] = info.name
            info.size = data.size
            archive.addfile(info, _ContentReader(data, progress))


def _info(tree: Tree, entry: Entry, epoch: int) -> tarfile.TarInfo:
    meta = tree.data_entry(entry) if entry.kind is EntryKind.HARDLINK else entry
    info = tarfile.TarInfo("." if entry.path == "/" else f".{entry.path}")
    info.type = _TYPES.get(entry.kind, tarfile.REGTYPE)
    info.mode = meta.mode
    info.uid, info.gid = meta.uid, meta.gid
    info.uname = info.gname = ""
    info.mtime = min(max(meta.mtime, 0), epoch)
    if entry.kind is EntryKind.SYMLINK:
        info.linkname = entry.target or ""
    if entry.rdev is not None:
        info.devmajor, info.devminor = entry.rdev
    return info


class _ContentReader:
    """A file object over an entry's data for :meth:`tarfile.TarFile.addfile` (whose reads
    are :data:`~rvforge.formats.cpio.BLOCK` long, so blocks pass through without copies)."""

    def __init__(self, entry: Entry, progress: Task | None) -> None:
        self._blocks = read_content(entry)
        self._pending = b""
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        parts = []
        got = 0
        while size < 0 or got < size:
            if not self._pending:
                self._pending = next(self._blocks, b"")
                if not self._pending:
                    break
                if self._progress is not None:
                    self._progress.advance(len(self._pending))
            part = self._pending if size < 0 else self._pending[:size - got]
            self._pending = self._pending[len(part):]
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)
