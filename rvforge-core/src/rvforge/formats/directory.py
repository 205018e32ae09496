"""Reading host directories into a :class:`~rvforge.Tree`, never following symlinks."""

from __future__ import annotations

import operator
import os
import stat
from pathlib import Path

from rvforge.errors import InputError
from rvforge.tree import Entry, EntryKind, FileIdentity, HostFile, Tree

__all__ = ["read_directory"]

_NAME = operator.attrgetter("name")  # sorts directory listings without a Python call


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
    # the top is what the user named: a symlink to a directory is read as that directory
    top = tree.add(reader.entry(dest.rstrip("/") or "/", host, os.stat(root)), member=host)
    pending = [(host, top)]
    while pending:  # a stack, not recursion: no depth limit
        host_dir, directory = pending.pop()
        pending.extend(reversed(reader.add_members(host_dir, directory)))
    tree.check_links(label=str(root))
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
