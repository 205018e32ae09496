"""Reading root filesystems into a :class:`~rvforge.Tree`: tarballs and host directories.

Nothing is created on the host but file contents: tar members' data goes to the scratch
directory (one file per member, read back when packed); owners, modes, links and device
nodes stay in the tree. Member names with ``..``, absolute names, hardlinks to anything but
an earlier member and symlinks that climb out of the root are refused with an error naming
the member.
"""

from __future__ import annotations

import operator
import os
import shutil
import stat
import tarfile
from pathlib import Path

from rvforge.compression import is_corrupt_stream_error, open_decompressed
from rvforge.errors import InputError, RvforgeError, UnsafePathError
from rvforge.tree import Entry, EntryKind, FileIdentity, HostFile, Tree

TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tzst",
                    ".tar.bz2")
_NAME = operator.attrgetter("name")  # sorts directory listings without a Python call


def is_tarball(path: Path) -> bool:
    """True when ``path`` is a (possibly compressed) tar archive, judged by its content."""
    try:
        with open_decompressed(path) as stream:
            block = stream.read(512)
    except Exception:  # noqa: BLE001 - unreadable means "not a tarball we can read"
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
    store = _ContentStore(scratch)
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
    return tree


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
    common = {"mode": member.mode & 0o7777, "uid": member.uid, "gid": member.gid,
              "mtime": int(member.mtime)}
    if member.isreg():
        fileobj = archive.extractfile(member)
        content = store.put(fileobj, member.size) if fileobj is not None else None
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


class _ContentStore:
    """Writes member contents to numbered files under a scratch directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def put(self, source: object, size: int) -> HostFile:
        self._count += 1
        path = self.directory / f"{self._count:08d}"
        with open(path, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)  # type: ignore[misc]
            written = out.tell()
        if written != size:
            raise InputError(f"member data truncated ({written} of {size} bytes)")
        return HostFile(path, size)


def read_directory(root: Path, *, tree: Tree | None = None, dest: str = "/",
                   owners: str = "root") -> Tree:
    """Add the host directory ``root`` to a tree at ``dest``, never following symlinks.

    Directories are read depth-first, names sorted; every regular file becomes a
    :class:`HostFile` carrying the :class:`FileIdentity` of its ``lstat`` here, so the
    packer can refuse a file that changes during the build and the ELF facts cache needs
    no ``stat`` of its own. An unreadable file or directory is an :class:`InputError`.

    :param owners: ``root`` records every entry as ``0:0`` (what a root filesystem wants,
        whoever built the directory); ``preserve`` keeps the host's numeric owners.
    """
    if owners not in ("root", "preserve"):
        raise InputError(f"owners must be 'root' or 'preserve', not {owners!r}")
    tree = tree if tree is not None else Tree()
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    reader = _DirectoryReader(tree, preserve=owners == "preserve")
    host = str(root)
    top = tree.add(reader.entry(dest.rstrip("/") or "/", host, os.lstat(root)), member=host)
    pending = [(host, top)]
    while pending:  # a stack, not recursion: no depth limit
        host_dir, directory = pending.pop()
        pending.extend(reversed(reader.add_members(host_dir, directory)))
    return tree


class _DirectoryReader:
    """Turns ``lstat`` results into tree entries (see :func:`read_directory`)."""

    def __init__(self, tree: Tree, *, preserve: bool) -> None:
        self.tree = tree
        self.preserve = preserve
        self.uid = os.getuid()

    def add_members(self, host_dir: str, directory: Entry) -> list[tuple[str, Entry]]:
        """Add the members of ``host_dir`` to the tree's ``directory``; return the
        subdirectories to read next (host path, tree entry) in name order."""
        try:
            with os.scandir(host_dir) as listing:
                members = sorted(listing, key=_NAME)
        except OSError as error:
            raise InputError(f"{host_dir}: cannot read ({error.strerror})") from None
        subdirs = []
        add, make = self.tree.add_member, self.entry  # bound once: thousands of calls
        for member in members:
            try:
                st = member.stat(follow_symlinks=False)
            except OSError as error:
                raise InputError(f"{member.path}: cannot read ({error.strerror})") from None
            name, host = member.name, member.path
            entry = add(directory, name, make(name, host, st), member=host)
            if entry.kind is EntryKind.DIR:
                subdirs.append((member.path, entry))
        return subdirs

    def entry(self, path: str, host: str, st: os.stat_result) -> Entry:
        """The entry at ``path`` for ``host``, whose ``lstat`` is ``st``."""
        mode = st.st_mode
        uid, gid = (st.st_uid, st.st_gid) if self.preserve else (0, 0)
        entry = Entry(path, EntryKind.FILE, mode & 0o7777, uid, gid, int(st.st_mtime))
        fmt = stat.S_IFMT(mode)
        if fmt == stat.S_IFREG:
            if not self._readable(host, st):
                raise InputError(f"{host}: not readable")
            entry.content = HostFile(host, st.st_size, FileIdentity.of(st))
        elif fmt == stat.S_IFDIR:
            entry.kind = EntryKind.DIR
        elif fmt == stat.S_IFLNK:
            entry.kind, entry.target = EntryKind.SYMLINK, os.readlink(host)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            entry.kind = EntryKind.CHAR if fmt == stat.S_IFCHR else EntryKind.BLOCK
            entry.rdev = (os.major(st.st_rdev), os.minor(st.st_rdev))
        elif fmt == stat.S_IFIFO:
            entry.kind = EntryKind.FIFO
        else:
            raise InputError(f"{host}: unsupported file type (socket?)")
        return entry

    def _readable(self, host: str, st: os.stat_result) -> bool:
        """``access(R_OK)``, answered from the mode for a file we own that grants us read
        (what ``access`` would say, without its system call)."""
        owner_reads = st.st_uid == self.uid and st.st_mode & stat.S_IRUSR != 0
        return owner_reads or os.access(host, os.R_OK)
