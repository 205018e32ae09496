"""cpio "newc" archives (the initramfs format), written and read by rvforge itself.

:func:`write_cpio` streams a :class:`~rvforge.Tree` as the Linux kernel's initramfs
unpacker and GNU ``cpio -i`` expect, without a host ``cpio``, ``chown`` or ``mknod``:

* members in :meth:`Tree.walk` order (sorted, parents first), the root written as ``.``
  (so its mode and owner reach the rootfs) and the rest as relative names;
* mode, uid and gid from the tree; mtimes clamped to ``SOURCE_DATE_EPOCH``;
* inode numbers 1, 2, 3... in that order, so the same tree gives the same bytes;
* a hardlinked file is one inode: every name carries the same inode number and link
  count, and only the last name carries the data (as GNU cpio and the kernel's own
  ``gen_init_cpio`` write it; the kernel links the later names to the first one);
* ``/dev/console`` (c 5 1) and ``/dev/null`` (c 1 3) added when the tree lacks them: the
  kernel opens ``/dev/console`` for ``/init`` before anything can create it.

:func:`read_cpio` reads a newc archive (any compression rvforge knows, concatenated
archives as the kernel accepts them) back into a tree, refusing ``..`` members and
symlinks that climb out of the root.
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, TypedDict

from rvforge.errors import InputError, RvforgeError, UnsafePathError
from rvforge.formats.compression import (
    decompress_stream,
    detect,
    is_corrupt_stream_error,
    open_decompressed,
)
from rvforge.formats.entries import (
    BLOCK,
    check_header_fields,
    read_content,
    with_device_nodes,
    write_scratch,
)
from rvforge.progress import Task
from rvforge.tree import EMPTY, Attributes, Entry, EntryKind, HostFile, Tree, normalize

__all__ = ["ScannedMember", "read_cpio", "scan_cpio", "write_cpio"]

MAGIC = b"070701"
CRC_MAGIC = b"070702"
"""The ``crc`` variant differs only in its checksum field, which readers may ignore."""
HEADER_SIZE = 110
TRAILER = "TRAILER!!!"
MAX_NAME = 4096
"""Longest member name (the kernel's ``PATH_MAX``)."""
MAX_FIELD = 0xFFFFFFFF

_HEX_FIELDS = re.compile(rb"[0-9A-Fa-f]{104}")
_FIELD_NAMES = ("inode number", "mode", "uid", "gid", "link count", "mtime", "data size",
                "device major", "device minor", "device major", "device minor",
                "name size", "checksum")

# -- writing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Inode:
    """What every name of one inode records: its number, link count, and which name
    carries the data."""

    number: int
    nlink: int
    data_on: str


def write_cpio(tree: Tree, out: BinaryIO, *, epoch: int, progress: Task | None = None
               ) -> None:
    """Write ``tree`` to ``out`` as a newc archive ending in ``TRAILER!!!``.

    :param epoch: ``SOURCE_DATE_EPOCH``: later mtimes are written as this.
    :param progress: advanced by the bytes of file data written.
    """
    tree = with_device_nodes(tree)
    entries = list(tree.walk())
    inodes = _number_inodes(tree, entries)
    subdirs = _count_subdirs(entries)
    for entry in entries:
        check_header_fields(entry, "cpio")
        _write_member(tree, entry, inodes[entry.path], subdirs, out, epoch, progress)
    out.write(_header(TRAILER, ino=0, mode=0, uid=0, gid=0, nlink=1, mtime=0, size=0))


def _number_inodes(tree: Tree, entries: list[Entry]) -> dict[str, _Inode]:
    """Inode numbers in walk order; the names of a hardlinked file share the first's."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind in (EntryKind.FILE, EntryKind.HARDLINK):
            groups.setdefault(tree.data_entry(entry).path, []).append(entry.path)
    inodes: dict[str, _Inode] = {}
    number = 0
    for entry in entries:
        if entry.path in inodes:
            continue
        number += 1
        if entry.kind in (EntryKind.FILE, EntryKind.HARDLINK):
            names = groups[tree.data_entry(entry).path]
            inode = _Inode(number, len(names), names[-1])
            inodes.update(dict.fromkeys(names, inode))
        else:
            inodes[entry.path] = _Inode(number, 1, entry.path)
    return inodes


def _count_subdirs(entries: list[Entry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.kind is EntryKind.DIR and entry.path != "/":
            counts[entry.parent] = counts.get(entry.parent, 0) + 1
    return counts


def _write_member(tree: Tree, entry: Entry, inode: _Inode, subdirs: dict[str, int],
                  out: BinaryIO, epoch: int, progress: Task | None) -> None:
    name = "." if entry.path == "/" else entry.path[1:]
    meta = tree.data_entry(entry) if entry.kind is EntryKind.HARDLINK else entry
    mtime = min(max(meta.mtime, 0), epoch)
    common: _HeaderFields = {"ino": inode.number, "mode": meta.st_mode, "uid": meta.uid,
                             "gid": meta.gid, "mtime": mtime, "member": entry.path}
    if entry.kind is EntryKind.DIR:
        out.write(_header(name, nlink=2 + subdirs.get(entry.path, 0), size=0, **common))
    elif entry.kind is EntryKind.SYMLINK:
        target = (entry.target or "").encode("utf-8", "surrogateescape")
        out.write(_header(name, nlink=1, size=len(target), **common))
        out.write(target + _pad(len(target)))
    elif entry.kind in (EntryKind.CHAR, EntryKind.BLOCK, EntryKind.FIFO):
        rdev = entry.rdev or (0, 0)
        out.write(_header(name, nlink=1, size=0, rdev=rdev, **common))
    else:  # FILE or HARDLINK: the data goes with the last name of the inode
        carries = inode.data_on == entry.path
        size = meta.size if carries else 0
        out.write(_header(name, nlink=inode.nlink, size=size, **common))
        if carries and size:
            for block in read_content(meta):
                out.write(block)
                if progress is not None:
                    progress.advance(len(block))
            out.write(_pad(size))


class _HeaderFields(TypedDict):
    """The header fields every member of one inode shares."""

    ino: int
    mode: int
    uid: int
    gid: int
    mtime: int
    member: str


def _header(name: str, *, ino: int, mode: int, uid: int, gid: int, nlink: int, mtime: int,
            size: int, rdev: tuple[int, int] = (0, 0), member: str | None = None) -> bytes:
    encoded = name.encode("utf-8", "surrogateescape") + b"\0"
    fields = (ino, mode, uid, gid, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(encoded),
              0)
    if max(fields) > MAX_FIELD or min(fields) < 0:
        what = next(label for label, value in zip(_FIELD_NAMES, fields)
                    if not 0 <= value <= MAX_FIELD)
        raise InputError(f"{member or name}: its {what} does not fit a cpio newc header "
                         "(0 to 4 GiB / 32 bits); pack this tree as ext4 or tar instead")
    head = MAGIC + b"".join(b"%08X" % value for value in fields)
    return head + encoded + _pad(HEADER_SIZE + len(encoded))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


# -- reading -------------------------------------------------------------------------------


MAX_SEGMENTS = 64
"""Compressed archives one cpio file may concatenate (each nests a decompressor)."""


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``stream``: the bytes after a trailer, already read,
    in front of what follows them."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def read_cpio(path: Path, scratch: Path, *, label: str | None = None) -> Tree:
    """Read the newc archive at ``path`` (uncompressed, gzip, xz, zstd or bzip2) into a
    new tree; file data is copied to files under ``scratch``.

    :param label: names the archive in error messages (default: the path).
    :raises InputError: a truncated or corrupt archive, an unsupported member type.
    :raises UnsafePathError: a ``..`` member or a symlink climbing out of the root.
    """
    label = label or str(path)
    tree = Tree()
    with _decompressed(path, label) as stream:
        _Reader(stream, tree, scratch, label).read()
    tree.check_links(label=label)
    return tree


@contextmanager
def _decompressed(path: Path, label: str) -> Iterator[BinaryIO]:
    """The archive's bytes, decompressed; what goes wrong reading them is one
    :class:`InputError` naming ``label``."""
    try:
        with open_decompressed(path) as stream:
            yield stream
    except RvforgeError:
        raise
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{label}: truncated or corrupt compressed data ({error})"
                             ) from None
        raise


@dataclass(frozen=True, slots=True)
class ScannedMember:
    """One member as :func:`scan_cpio` reports it.

    :param path: its normalised absolute path (``/`` for ``.``).
    :param mode: type and permission bits (``st_mode``).
    :param inode: ``(dev major, dev minor, inode)`` when it is one of several names of a
        file (link count above 1; the data comes with the last name), else ``None``.
    :param size: bytes of data this member carries.
    :param target: a symlink's target (empty for other kinds).
    :param head: the first bytes of a file's data (as many as asked for).
    """

    path: str
    mode: int
    inode: tuple[int, int, int] | None
    size: int
    target: str
    head: bytes


def scan_cpio(path: Path, *, head: Callable[[str, int], int] = lambda path, mode: 0,
              label: str | None = None) -> Iterator[ScannedMember]:
    """Each member of the newc archive at ``path`` (any compression :func:`read_cpio`
    reads), in archive order, reading no more than it must: file data is skipped but for
    the first ``head(path, mode)`` bytes. Stopping early stops the decompression too.

    :raises InputError: a truncated or corrupt archive.
    :raises UnsafePathError: a ``..`` member.
    """
    label = label or str(path)
    with _decompressed(path, label) as stream:
        yield from _Scanner(stream, label).members(head)


@dataclass(frozen=True, slots=True)
class _Member:
    """One parsed newc header and its name."""

    name: str
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    size: int
    dev: tuple[int, int]
    rdev: tuple[int, int]


class _Reader:
    """Parses a decompressed newc stream member by member into a tree."""

    def __init__(self, stream: BinaryIO, tree: Tree, scratch: Path, label: str) -> None:
        self.stream = stream
        self.tree = tree
        self.scratch = scratch
        self.label = label
        self.offset = 0
        self.pending = b""
        self.stored = 0
        self.links: dict[tuple[int, int, int], Entry] = {}
        self.segments = 0

    def read(self) -> None:
        while True:
            member = self._header()
            if member.name == TRAILER:
                self.links.clear()  # as the kernel: inode numbers are per archive
                if not self._more_archives():
                    return
                continue
            self._add(member)

    # -- members -----------------------------------------------------------------------

    def _add(self, m: _Member) -> None:
        fmt = stat.S_IFMT(m.mode)
        common: Attributes = {"mode": m.mode & 0o7777, "uid": m.uid, "gid": m.gid,
                              "mtime": m.mtime}
        where = f"{self.label}: member {m.name!r}"
        if m.name.startswith("/"):
            raise UnsafePathError(f"{where} has an absolute name; recreate the archive with "
                                  "relative names (cd ROOT && find . | cpio -o -H newc)")
        if fmt == stat.S_IFREG:
            self._add_file(m, common)
            return
        if fmt == stat.S_IFLNK:
            if m.size > MAX_NAME:
                raise InputError(f"{where}: symlink target of {m.size} bytes; the archive "
                                 "is corrupt")
            target = self._exact(m.size, "a symlink target")
            self._skip(-m.size % 4)
            entry = Entry(m.name, EntryKind.SYMLINK, target=target.decode(
                "utf-8", "surrogateescape"), **common)
        elif fmt == stat.S_IFDIR:
            entry = Entry(m.name, EntryKind.DIR, **common)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            kind = EntryKind.CHAR if fmt == stat.S_IFCHR else EntryKind.BLOCK
            entry = Entry(m.name, kind, rdev=m.rdev, **common)
        elif fmt == stat.S_IFIFO:
            entry = Entry(m.name, EntryKind.FIFO, **common)
        else:
            raise InputError(f"{where} has an unsupported file type (mode {m.mode:o}); "
                             "rvforge trees hold files, directories, links, devices and "
                             "fifos")
        if fmt != stat.S_IFLNK:
            self._skip(m.size + (-m.size % 4))
        self._put(entry, m.name)

    def _add_file(self, m: _Member, common: Attributes) -> None:
        key = (m.dev[0], m.dev[1], m.ino)
        primary = self.links.get(key) if m.nlink > 1 else None
        content = self._store(m.size) if m.size else None
        if primary is not None and self.tree.get(primary.path) is primary:
            self._put(Entry(m.name, EntryKind.HARDLINK, target=primary.path, **common),
                      m.name)
            if content is not None:
                primary.content = content
            return
        entry = self._put(Entry(m.name, EntryKind.FILE, content=content or EMPTY, **common),
                          m.name)
        if m.nlink > 1:
            self.links[key] = entry

    def _put(self, entry: Entry, name: str) -> Entry:
        try:
            return self.tree.add(entry, member=f"{self.label}: {name}")
        except UnsafePathError:
            raise
        except InputError as error:
            raise InputError(f"{self.label}: member {name!r}: {error}") from None

    def _store(self, size: int) -> HostFile:
        self.stored += 1
        path = self.scratch / f"{self.stored:08d}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            remaining = size
            while remaining:
                block = self._exact(min(BLOCK, remaining), "file data")
                write_scratch(out, block, path)
                remaining -= len(block)
        self._skip(-size % 4)
        return HostFile(path, size)

    # -- the byte stream ---------------------------------------------------------------

    def _header(self) -> _Member:
        start = self.offset
        head = self._exact(HEADER_SIZE, "a member header")
        if head[:6] not in (MAGIC, CRC_MAGIC) or not _HEX_FIELDS.fullmatch(head, 6):
            raise InputError(
                f"{self.label}: no cpio newc header at byte {start} (found {head[:6]!r}); "
                "the archive is corrupt or not in newc format (cpio -H newc)"
            )
        (ino, mode, uid, gid, nlink, mtime, size, dev_major, dev_minor, rdev_major,
         rdev_minor, namesize, _check) = (int(head[i:i + 8], 16) for i in range(6, 110, 8))
        if not 1 < namesize <= MAX_NAME + 1:
            raise InputError(f"{self.label}: member at byte {start} has a name of "
                             f"{namesize} bytes; the archive is corrupt")
        raw = self._exact(namesize, "a member name")
        if raw[-1:] != b"\0" or b"\0" in raw[:-1]:
            raise InputError(f"{self.label}: member name at byte {start} is not "
                             "NUL-terminated; the archive is corrupt")
        self._skip(-(HEADER_SIZE + namesize) % 4)
        name = raw[:-1].decode("utf-8", "surrogateescape")
        return _Member(name, ino, mode, uid, gid, nlink, mtime, size,
                       (dev_major, dev_minor), (rdev_major, rdev_minor))

    def _more_archives(self) -> bool:
        """After a trailer: skip NUL padding; True when another archive follows (the
        kernel unpacks concatenated archives, each compressed or not: an uncompressed
        microcode archive, then the compressed root), False at the end or before other
        data."""
        while True:
            if not self.pending:
                self.pending = self.stream.read(BLOCK)
                if not self.pending:
                    return False
            stripped = self.pending.lstrip(b"\0")
            self.offset += len(self.pending) - len(stripped)
            self.pending = stripped
            if stripped:
                head = self._peek(6)
                kind = detect(head)
                if head in (MAGIC, CRC_MAGIC) or kind is None:
                    return head in (MAGIC, CRC_MAGIC)
                self.segments += 1
                if self.segments > MAX_SEGMENTS:
                    raise InputError(f"{self.label}: more than {MAX_SEGMENTS} compressed "
                                     "archives concatenated; not an initramfs")
                self.stream = decompress_stream(
                    io.BufferedReader(_Prefixed(self.pending, self.stream)), kind)
                self.pending = b""

    def _peek(self, size: int) -> bytes:
        while len(self.pending) < size:
            more = self.stream.read(BLOCK)
            if not more:
                break
            self.pending += more
        return self.pending[:size]

    def _exact(self, size: int, what: str) -> bytes:
        data = self._take(size)
        if len(data) < size:
            raise InputError(f"{self.label}: truncated at byte {self.offset} (in {what}); "
                             "the archive is incomplete")
        return data

    def _take(self, size: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:size], self.pending[size:]
        else:
            data = b""
        parts = [data]
        got = len(data)
        while got < size:
            more = self.stream.read(size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        data = b"".join(parts) if len(parts) > 1 else data
        self.offset += len(data)
        return data

    def _skip(self, size: int) -> None:
        if size:
            self._exact(size, "padding")


class _Scanner(_Reader):
    """Parses a decompressed newc stream into :class:`ScannedMember`s, skipping data."""

    def __init__(self, stream: BinaryIO, label: str) -> None:
        super().__init__(stream, Tree(), Path(), label)

    def members(self, head: Callable[[str, int], int]) -> Iterator[ScannedMember]:
        while True:
            m = self._header()
            if m.name == TRAILER:
                if not self._more_archives():
                    return
                continue
            path = normalize(m.name, member=f"{self.label}: member {m.name!r}")
            data = b""
            if stat.S_ISLNK(m.mode):
                if m.size > MAX_NAME:
                    raise InputError(f"{self.label}: member {m.name!r}: symlink target of "
                                     f"{m.size} bytes; the archive is corrupt")
                data = self._exact(m.size, "a symlink target")
            elif stat.S_ISREG(m.mode) and m.size:
                data = self._exact(min(m.size, max(0, head(path, m.mode))), "file data")
            self._discard(m.size - len(data) + (-m.size % 4))
            target = data.decode("utf-8", "surrogateescape") if stat.S_ISLNK(m.mode) else ""
            first = b"" if stat.S_ISLNK(m.mode) else data
            inode = (m.dev[0], m.dev[1], m.ino) if m.nlink > 1 else None
            yield ScannedMember(path, m.mode, inode, m.size, target, first)

    def _discard(self, size: int) -> None:
        while size > 0:
            size -= len(self._exact(min(BLOCK, size), "file data"))
