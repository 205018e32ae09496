"""Reading tarballs into a :class:`~rvforge.Tree`.

Nothing is created on the host but file contents: tar members' data goes to the scratch
directory (one file per member, read back when packed); owners, modes, links and device
nodes stay in the tree. Member names with ``..``, absolute names, hardlinks to anything but
an earlier member and symlinks that climb out of the root are refused with an error naming
the member.
"""

from __future__ import annotations

import math
import shutil
import tarfile
from pathlib import Path
from typing import IO

from rvforge.errors import InputError, RvforgeError, UnsafePathError
from rvforge.formats.compression import is_corrupt_stream_error, open_decompressed, read_up_to
from rvforge.formats.entries import write_scratch
from rvforge.numbers import is_decimal
from rvforge.tree import Attributes, Entry, EntryKind, HostFile, Tree

__all__ = ["add_tar_member", "is_tarball", "read_tar_stream", "read_tarball"]


def is_tarball(path: Path) -> bool:
    """True when ``path`` is a (possibly compressed) tar archive, judged by its content."""
    try:
        with open_decompressed(path) as stream:
            block = read_up_to(stream, 512)
    except Exception:
        return False
    return len(block) == 512 and block[257:262] == b"ustar"



def read_tarball(path: Path, scratch: Path, *, tree: Tree | None = None,
                 label: str | None = None) -> Tree:
    """Read the tarball at ``path`` (any of the compressions rvforge knows) into a tree.

    :param scratch: directory where member contents are stored.
    :param tree: add to this tree instead of a new one.
    :param label: names the archive in error messages (default: the path).
    """
    label = label or str(path)
    tree = tree if tree is not None else Tree()
    store = _ContentStore(scratch, budget=max(MIN_BUDGET, path.stat().st_size * MAX_RATIO))
    try:
        with open_decompressed(path) as stream:
            read_tar_stream(stream, tree, store, label)
            while stream.read(1 << 20):  # drain to the end: checks the gzip/xz/zstd trailer
                pass
    except RvforgeError:
        raise
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except (tarfile.TarError, ValueError) as error:
        raise InputError(f"{label}: not a readable tarball ({error})") from None
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{label}: truncated or corrupt archive ({error})") from None
        raise
    tree.check_links(label=label)
    return tree


_PAX_IDS = ("uid", "gid", "size")
"""pax keywords whose value is a decimal number (``mtime`` may have a fraction)."""


def read_tar_stream(stream: object, tree: Tree, store: _ContentStore, label: str) -> None:
    """Add every member of the uncompressed tar ``stream`` to ``tree``."""
    with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            add_tar_member(tree, member, archive, store, label)


def add_tar_member(tree: Tree, member: tarfile.TarInfo, archive: tarfile.TarFile,
                   store: _ContentStore, label: str) -> Entry:
    """Convert one tar member to a tree entry (its data copied to ``store``)."""
    name = member.name
    where = f"{label}: member {name!r}"
    if name.startswith("/"):
        raise UnsafePathError(
            f"{where} has an absolute name; recreate the archive with relative names "
            "(tar -C ROOT -cf OUT .)"
        )
    for key in _PAX_IDS:
        value = member.pax_headers.get(key)
        if value is not None and not is_decimal(value.removeprefix("-")):
            # tarfile turns a malformed number into 0: uid=1e3 would become root
            raise InputError(f"{where} has the pax {key} {value[:40]!r}, not a whole number; "
                             "the archive is malformed")
    if not math.isfinite(member.mtime) or abs(member.mtime) >= 1 << 63:
        raise InputError(f"{where} has the mtime {member.mtime!r}, not a time; the archive "
                         "is corrupt")
    common: Attributes = {"mode": member.mode & 0o7777, "uid": member.uid,
                          "gid": member.gid, "mtime": int(member.mtime)}
    if member.isreg():
        fileobj = archive.extractfile(member)
        try:
            content = store.put(fileobj, member.size) if fileobj is not None else None
        except InputError as error:  # "member data truncated": say which member
            raise InputError(f"{where}: {error}") from None
        entry = Entry(name, EntryKind.FILE, content=content, **common)
    elif member.isdir():
        entry = Entry(name, EntryKind.DIR, **common)
    elif member.issym():
        entry = Entry(name, EntryKind.SYMLINK, target=member.linkname, **common)
    elif member.islnk():
        if member.linkname.startswith("/"):
            raise UnsafePathError(f"{where} is a hardlink to the absolute path "
                                  f"{member.linkname!r}")
        entry = Entry(name, EntryKind.HARDLINK, target=member.linkname, **common)
    elif member.ischr() or member.isblk():
        kind = EntryKind.CHAR if member.ischr() else EntryKind.BLOCK
        entry = Entry(name, kind, rdev=(member.devmajor, member.devminor), **common)
    elif member.isfifo():
        entry = Entry(name, EntryKind.FIFO, **common)
    else:
        raise InputError(f"{where} has an unsupported type {member.type!r}")
    return tree.add(entry, member=where)


MAX_RATIO = 1100
"""Times its own size a tarball may expand to when unpacked (as for packages: gzip's best
is ~1030; a larger ratio is a sparse member or a bomb)."""
MIN_BUDGET = 1 << 30
"""Bytes any tarball may expand to, whatever its ratio."""
SCRATCH_RESERVE = 64 << 20
"""Bytes of the scratch file system left free when unpacking an archive into it."""


class _ContentStore:
    """Writes member contents to numbered files under a scratch directory."""

    def __init__(self, directory: Path, *, budget: int | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._room = shutil.disk_usage(directory).free - SCRATCH_RESERVE
        self._budget = budget

    def put(self, source: IO[bytes], size: int) -> HostFile:
        if self._budget is not None and size > self._budget:
            raise InputError(f"the archive expands to more than {MAX_RATIO} times its size "
                             "(a sparse member declaring gigabytes, or a compression bomb); "
                             "refusing to unpack it")
        if size > self._room:
            raise InputError(f"its {size} bytes do not fit in the free space of the scratch "
                             f"directory ({self.directory}: {max(self._room, 0)} bytes left); "
                             "set TMPDIR to a larger file system")
        self._room -= size
        if self._budget is not None:
            self._budget -= size
        self._count += 1
        path = self.directory / f"{self._count:08d}"
        with open(path, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                write_scratch(out, block, path)
            written = out.tell()
        if written != size:
            raise InputError(f"member data truncated ({written} of {size} bytes)")
        return HostFile(path, size)
