"""The Tree: one in-memory model of a root filesystem.

A :class:`Tree` maps normalised absolute POSIX paths (``/usr/bin/env``) to :class:`Entry`
objects in insertion order. Ownership, modes and device nodes live in the entries, never on
the host's disk, so building a tree needs no root, no ``chown`` and no ``mknod``: this is
what fakeroot and ``gen_init_cpio`` file lists do, done once.

File contents are not held in the tree; each file entry carries a :class:`Content` that
knows where its bytes come from (a host file, bytes in memory). Packers stream from it.

Paths are refused when they contain ``..``; symlinks are resolved inside the tree the way
a chroot would resolve them (``/`` is the tree's root and ``..`` stops there).
"""

from __future__ import annotations

import enum
import io
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol, TypedDict, runtime_checkable

from rvforge.errors import InputError, UnsafePathError

MAX_SYMLINK_HOPS = 40
"""As Linux's ``MAXSYMLINKS``: more hops than this while resolving is a loop."""


class EntryKind(enum.Enum):
    """What an entry is; the file-type half of ``st_mode``."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"

    @property
    def type_bits(self) -> int:
        """The ``S_IF*`` bits of this kind (a hardlink is a regular file)."""
        return _TYPE_BITS[self]

    @property
    def letter(self) -> str:
        """The ``ls -l`` type letter (``-``, ``d``, ``l``, ``h`` for a hardlink, ...)."""
        return _LETTERS[self]


_TYPE_BITS = {
    EntryKind.FILE: stat.S_IFREG,
    EntryKind.HARDLINK: stat.S_IFREG,
    EntryKind.DIR: stat.S_IFDIR,
    EntryKind.SYMLINK: stat.S_IFLNK,
    EntryKind.CHAR: stat.S_IFCHR,
    EntryKind.BLOCK: stat.S_IFBLK,
    EntryKind.FIFO: stat.S_IFIFO,
}
_LETTERS = {
    EntryKind.FILE: "-",
    EntryKind.HARDLINK: "h",
    EntryKind.DIR: "d",
    EntryKind.SYMLINK: "l",
    EntryKind.CHAR: "c",
    EntryKind.BLOCK: "b",
    EntryKind.FIFO: "p",
}


@runtime_checkable
class Content(Protocol):
    """Where a file's bytes come from. ``open()`` returns a fresh binary stream."""

    @property
    def size(self) -> int: ...

    def open(self) -> BinaryIO: ...


class FileIdentity(NamedTuple):
    """What ``stat`` says of a host file that changes whenever its bytes may have: device,
    inode, size, ``st_mtime_ns`` and ``st_ctime_ns``. The kernel sets ctime on every write
    and nobody can set it back, so a rewritten file never keeps its identity (unless it is
    rewritten within the timestamp granularity of the ``stat``; see
    :mod:`rvforge.riscv.facts_cache`).
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileWindow(io.RawIOBase):
    """A read-only, seekable window on ``size`` bytes of the open binary file ``raw`` from
    ``offset``; closing it closes ``raw``. It has no ``fileno()``, so readers that would
    use the descriptor (``pread``, ``mmap``) take the window's ``read``/``seek`` instead and
    cannot reach past it."""

    def __init__(self, raw: BinaryIO, offset: int, size: int) -> None:
        super().__init__()
        self._raw = raw
        self._start = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        left = self._size - self._pos
        if left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), left)]
        self._raw.seek(self._start + self._pos)
        count = self._raw.readinto(view)  # type: ignore[attr-defined]
        self._pos += count
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass(frozen=True, slots=True)
class HostFile:
    """Bytes of a regular file on the host (read when packed, never copied first).

    :param path: the file on the host (:func:`~rvforge.formats.tar.read_directory` gives a
        ``str``: thousands of them are made much faster than :class:`~pathlib.Path`).
    :param size: its size when the tree was built.
    :param identity: its :class:`FileIdentity` when the tree was built (``read_directory``
        and :meth:`of` record it), or ``None``. With one, :meth:`open` refuses a file that
        has changed since: the tree, and the audit of it, describe the bytes as they were,
        and a file rewritten during the build must not be packed in their place. The ELF
        facts cache keys the file by it without a ``stat`` of its own.
    :param offset: ``None`` when the content is the whole file; else the content is the
        ``size`` bytes from ``offset`` (a member of an uncompressed archive kept whole on
        the host, as rvforge-debootstrap keeps each package's ``data.tar``), and
        :meth:`open` returns a :class:`FileWindow` on them.
    """

    path: Path | str
    size: int
    identity: FileIdentity | None = None
    offset: int | None = None

    @classmethod
    def of(cls, path: Path | str) -> HostFile:
        """The file at ``path`` (symlinks followed) as it is now, identity included."""
        st = os.stat(path)
        return cls(Path(path), st.st_size, FileIdentity.of(st))

    def open(self) -> BinaryIO:
        """The file's bytes; raises :class:`InputError` if it is no longer the file the
        tree recorded (see :meth:`verify`)."""
        stream = open(self.path, "rb")
        if self.identity is not None:
            try:
                self.verify(FileIdentity.of(os.fstat(stream.fileno())))
            except BaseException:
                stream.close()
                raise
        return stream if self.offset is None else self.window(stream)

    def window(self, stream: BinaryIO) -> BinaryIO:
        """``stream`` (this file, opened) limited to the content's bytes: itself for a
        whole file, else a buffered :class:`FileWindow` that owns it."""
        if self.offset is None:
            return stream
        return io.BufferedReader(FileWindow(stream, self.offset, self.size))

    def verify(self, now: FileIdentity) -> None:
        """Raise :class:`InputError` when ``now`` (of the opened file) is not the
        :attr:`identity` recorded when the tree was built (if one was)."""
        if self.identity is not None and now != self.identity:
            changed = ", ".join(f"{name} {old} -> {new}" for name, old, new in
                                zip(FileIdentity._fields, self.identity, now) if old != new)
            raise InputError(
                f"{self.path}: changed during the build, after it was read into the tree "
                f"({changed}); make sure nothing writes to the source while rvforge runs, "
                "then build again")


@dataclass(frozen=True, slots=True)
class InlineBytes:
    """Bytes held in memory (small generated files: ``/init``, configs, databases)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


EMPTY = InlineBytes(b"")


class Attributes(TypedDict):
    """What every entry has besides its path and kind, as readers collect it once per
    member: ``Entry(path, kind, **attributes)``."""

    mode: int
    uid: int
    gid: int
    mtime: int


@dataclass(slots=True)
class Entry:
    """One member of a :class:`Tree`.

    :param path: normalised absolute path (``/etc/passwd``); ``/`` is the root.
    :param kind: what the entry is.
    :param mode: permission bits including setuid, setgid and sticky (``0o7777`` mask).
    :param uid: numeric owner.
    :param gid: numeric group.
    :param mtime: modification time, seconds since the epoch.
    :param content: the bytes of a ``FILE`` entry.
    :param target: a symlink's target as stored (may be relative), or for a ``HARDLINK``
        the absolute path of the file it shares data with.
    :param rdev: ``(major, minor)`` of a device node.
    """

    path: str
    kind: EntryKind
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    content: Content | None = None
    target: str | None = None
    rdev: tuple[int, int] | None = None

    @property
    def st_mode(self) -> int:
        """File type and permission bits together, as ``stat()`` reports them."""
        return self.kind.type_bits | (self.mode & 0o7777)

    @property
    def size(self) -> int:
        """Bytes of content (0 for anything but a ``FILE``; hardlinks share their target's)."""
        return self.content.size if self.content is not None else 0

    @property
    def name(self) -> str:
        return posixpath.basename(self.path) or "/"

    @property
    def parent(self) -> str:
        return posixpath.dirname(self.path)


@dataclass(frozen=True, slots=True)
class TreeStats:
    """Entry counts per kind and the total bytes of file contents."""

    counts: dict[str, int] = field(default_factory=dict)
    file_bytes: int = 0

    @property
    def entries(self) -> int:
        return sum(self.counts.values())


def normalize(path: str, *, member: str | None = None) -> str:
    """Return ``path`` as a normalised absolute path.

    ``./usr//bin/`` and ``usr/bin`` become ``/usr/bin``. A ``..`` component is refused
    with :class:`UnsafePathError` naming ``member`` (or the path): a root filesystem never
    needs one, and a tool that followed it on the host would leave the tree.
    """
    who = member or repr(path)
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafePathError(
                f"{who}: path contains '..'; refusing a member that climbs out of the root "
                "filesystem"
            )
        if "\0" in part:
            raise UnsafePathError(f"{who}: path contains a NUL byte")
        parts.append(part)
    return "/" + "/".join(parts)


def check_symlink_target(path: str, target: str, member: str | None = None) -> None:
    """Refuse a relative symlink target that climbs above the root from ``path``'s directory.

    Absolute targets are fine (they resolve inside the tree, as in a chroot); so are
    relative ones that stay inside. A target such as ``../../../../etc/shadow`` from
    ``/etc/x`` is what a hostile archive uses to make a host-side tool write outside the
    tree, and no real root filesystem needs one.
    """
    who = member or repr(path)
    if not target:
        raise UnsafePathError(f"{who}: symlink with an empty target")
    if "\0" in target:
        raise UnsafePathError(f"{who}: symlink target contains a NUL byte")
    if target.startswith("/"):
        return
    depth = path.count("/") - 1  # directories between the root and the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise UnsafePathError(
                    f"{who}: symlink target {target!r} escapes the root filesystem"
                )
        elif part not in ("", "."):
            depth += 1


class Tree:
    """An ordered mapping of normalised absolute paths to :class:`Entry` objects.

    The root ``/`` always exists. Adding an entry creates missing parent directories
    (mode ``0755``, ``root:root``). When a parent on the way is a symlink to a directory,
    the entry is placed where the link resolves inside the tree, as ``dpkg`` and ``tar``
    do on a real root (``/bin/sh`` lands in ``/usr/bin/sh`` on a merged-``/usr`` system).
    """

    def __init__(self, *, root_mode: int = 0o755, mtime: int = 0) -> None:
        self._entries: dict[str, Entry] = {}
        self._children: dict[str, dict[str, None]] = {}
        self._entries["/"] = Entry("/", EntryKind.DIR, root_mode, mtime=mtime)
        self._children["/"] = {}

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and _quick_norm(path) in self._entries

    def __getitem__(self, path: str) -> Entry:
        try:
            return self._entries[_quick_norm(path)]
        except KeyError:
            raise KeyError(path) from None

    def get(self, path: str) -> Entry | None:
        """The entry stored at ``path`` itself (symlinks are not followed), or ``None``."""
        return self._entries.get(_quick_norm(path))

    def __iter__(self) -> Iterator[Entry]:
        """Entries in insertion order (the root first)."""
        return iter(list(self._entries.values()))

    def paths(self) -> list[str]:
        return list(self._entries)

    def walk(self) -> Iterator[Entry]:
        """Entries sorted by path, parents before children: the order packers write."""
        entries = self._entries
        return iter([entries[path] for path in sorted(entries, key=_sort_key)])

    def children(self, path: str) -> list[Entry]:
        """The direct members of directory ``path`` (resolved through symlinks), sorted."""
        resolved = self.resolve(path)
        names = self._children.get(resolved, {})
        base = "" if resolved == "/" else resolved
        return [self._entries[f"{base}/{name}"] for name in sorted(names)]

    def resolve(self, path: str, *, follow_final: bool = True) -> str:
        """Resolve ``path`` through the tree's symlinks as a chroot would.

        ``..`` stops at the root and absolute targets restart from the tree's root, so the
        result never leaves the tree. The returned path need not exist. A loop raises
        :class:`InputError`.
        """
        todo = [p for p in path.split("/") if p not in ("", ".")]
        todo.reverse()
        resolved: list[str] = []
        hops = 0
        while todo:
            part = todo.pop()
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            resolved.append(part)
            entry = self._entries.get("/" + "/".join(resolved))
            if entry is None or entry.kind is not EntryKind.SYMLINK:
                continue
            if not todo and not follow_final:
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise InputError(f"{path!r}: too many levels of symbolic links (a loop)")
            resolved.pop()
            target = entry.target or ""
            if target.startswith("/"):
                resolved = []
            todo.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
        return "/" + "/".join(resolved)

    def escapes(self, path: str, target: str) -> bool:
        """True when the symlink target ``target`` of the link at ``path``, resolved through
        this tree's own links, climbs above the root: a ``..`` that a chroot would stop at
        the root but a host-side tool following the link (after extracting the image)
        would take out of the tree. Chains such as ``a/up -> ..`` plus ``a/x ->
        up/../etc/passwd`` escape although each link alone stays inside. A loop (more than
        :data:`MAX_SYMLINK_HOPS` hops) is not an escape: it resolves to nothing."""
        resolved = [] if target.startswith("/") else [p for p in path.split("/")[:-1] if p]
        todo = [p for p in target.split("/") if p not in ("", ".")]
        todo.reverse()
        hops = 0
        while todo:
            part = todo.pop()
            if part == "..":
                if not resolved:
                    return True
                resolved.pop()
                continue
            resolved.append(part)
            entry = self._entries.get("/" + "/".join(resolved))
            if entry is None or entry.kind is not EntryKind.SYMLINK:
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return False
            resolved.pop()
            link = entry.target or ""
            if link.startswith("/"):
                resolved = []
            todo.extend(reversed([p for p in link.split("/") if p not in ("", ".")]))
        return False

    def check_links(self, *, label: str = "the tree") -> None:
        """Refuse (:class:`UnsafePathError`) the first symlink whose target escapes the
        root through the tree's links (:meth:`escapes`). Readers call it once the whole
        source is in: a chain's links may arrive in any order."""
        for entry in self._entries.values():
            if entry.kind is EntryKind.SYMLINK and self.escapes(entry.path, entry.target or ""):
                raise UnsafePathError(_escape_message(f"{label}: {entry.path}", entry.target))

    def lookup(self, path: str, *, follow_final: bool = True) -> Entry | None:
        """The entry ``path`` leads to after symlink resolution, or ``None`` if dangling."""
        try:
            return self._entries.get(self.resolve(path, follow_final=follow_final))
        except InputError:
            return None

    def data_entry(self, entry: Entry) -> Entry:
        """For a hardlink, the ``FILE`` entry holding its data; otherwise ``entry``."""
        seen = 0
        while entry.kind is EntryKind.HARDLINK:
            target = self._entries.get(entry.target or "")
            seen += 1
            if target is None or seen > len(self._entries):
                raise InputError(f"{entry.path!r}: hardlink to missing {entry.target!r}")
            entry = target
        return entry

    def open(self, path: str) -> BinaryIO:
        """Open the regular file ``path`` leads to (following symlinks and hardlinks)."""
        entry = self.lookup(path)
        if entry is None:
            raise FileNotFoundError(path)
        entry = self.data_entry(entry)
        if entry.kind is not EntryKind.FILE or entry.content is None:
            raise IsADirectoryError(path) if entry.kind is EntryKind.DIR else OSError(
                f"{path}: not a regular file"
            )
        return entry.content.open()

    def read_bytes(self, path: str) -> bytes:
        with self.open(path) as stream:
            return stream.read()

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding, errors="replace")

    def is_file(self, path: str) -> bool:
        entry = self.lookup(path)
        return entry is not None and entry.kind in (EntryKind.FILE, EntryKind.HARDLINK)

    def is_dir(self, path: str) -> bool:
        entry = self.lookup(path)
        return entry is not None and entry.kind is EntryKind.DIR

    def file_size(self, entry: Entry) -> int:
        """Bytes of a file or hardlink entry's data (0 for other kinds)."""
        if entry.kind is EntryKind.HARDLINK:
            return self.data_entry(entry).size
        return entry.size

    def stats(self) -> TreeStats:
        counts: dict[str, int] = {}
        file_bytes = 0
        for entry in self._entries.values():
            counts[entry.kind.value] = counts.get(entry.kind.value, 0) + 1
            if entry.kind is EntryKind.FILE:
                file_bytes += entry.size
        return TreeStats(counts, file_bytes)

    # -- writing -------------------------------------------------------------------------

    def add(self, entry: Entry, *, member: str | None = None) -> Entry:
        """Insert ``entry`` (its path normalised), replacing what is there; return it.

        Replacing a directory with a directory keeps its contents and takes the new
        metadata; replacing anything else removes the old entry (and a directory's
        subtree). ``member`` names the entry in error messages (an archive member name).
        """
        path = entry.path
        if "\0" in path:
            normalize(path, member=member)  # refuses it
        path = _quick_norm(path, member=member)
        if path == "/":
            if entry.kind is not EntryKind.DIR:
                raise UnsafePathError(f"{member or repr(entry.path)}: the root must be a directory")
            root = self._entries["/"]
            root.mode, root.uid, root.gid, root.mtime = (
                entry.mode, entry.uid, entry.gid, entry.mtime
            )
            return root
        head, _, name = path.rpartition("/")
        parent = self._ensure_parent(head or "/", member or repr(entry.path))
        if parent != head:  # a parent on the way is a symlink, or the root
            path = f"{'' if parent == '/' else parent}/{name}"
        return self._place(entry, path, parent, name, member)

    def add_member(self, directory: Entry, name: str, entry: Entry, *,
                   member: str | None = None) -> Entry:
        """:meth:`add` ``entry`` as ``name`` in ``directory`` (an entry of this tree),
        whatever ``entry.path`` says; return it.

        The same as :meth:`add` with the path ``directory.path + "/" + name``, without
        normalising a path and resolving its parents again: for readers that add a
        directory's members after the directory (:func:`~rvforge.formats.tar.read_directory`).
        A ``name`` that is not one plain component (empty, ``.``, ``..``, a ``/`` or NUL
        byte in it) is refused; a ``directory`` that is no longer this tree's directory
        entry at its path goes the long way through :meth:`add`.
        """
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise UnsafePathError(f"{member or repr(name)}: {name!r} is not a file name")
        base = directory.path
        if self._entries.get(base) is not directory or directory.kind is not EntryKind.DIR:
            entry.path = f"{base}/{name}"
            return self.add(entry, member=member)
        path = f"/{name}" if base == "/" else f"{base}/{name}"
        return self._place(entry, path, base, name, member)

    def _place(self, entry: Entry, path: str, parent: str, name: str,
               member: str | None) -> Entry:
        """Put ``entry`` at the normalised ``path``, ``name`` in the existing directory
        ``parent`` (the second half of :meth:`add`)."""
        if entry.kind is EntryKind.SYMLINK:
            check_symlink_target(path, entry.target or "", member)
            if self.escapes(path, entry.target or ""):
                raise UnsafePathError(_escape_message(member or repr(path), entry.target))
        elif entry.kind is EntryKind.HARDLINK:
            entry.target = self._hardlink_target(path, entry.target, member)
        elif entry.kind is EntryKind.FILE and entry.content is None:
            entry.content = EMPTY
        entry.path = path
        entry.mode &= 0o7777
        old = self._entries.get(path)
        if old is not None:
            if old.kind is EntryKind.DIR and entry.kind is EntryKind.DIR:
                old.mode, old.uid, old.gid = entry.mode, entry.uid, entry.gid
                old.mtime = entry.mtime
                return old
            self.remove(path)
        self._entries[path] = entry
        self._children[parent][name] = None
        if entry.kind is EntryKind.DIR:
            self._children[path] = {}
        return entry

    def add_file(
        self,
        path: str,
        content: Content | bytes,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
    ) -> Entry:
        if isinstance(content, bytes):
            content = InlineBytes(content)
        return self.add(Entry(path, EntryKind.FILE, mode, uid, gid, mtime, content=content))

    def add_dir(
        self, path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = 0
    ) -> Entry:
        return self.add(Entry(path, EntryKind.DIR, mode, uid, gid, mtime))

    def add_symlink(
        self, path: str, target: str, *, uid: int = 0, gid: int = 0, mtime: int = 0
    ) -> Entry:
        return self.add(Entry(path, EntryKind.SYMLINK, 0o777, uid, gid, mtime, target=target))

    def add_hardlink(self, path: str, target: str, *, mtime: int | None = None) -> Entry:
        """Add ``path`` sharing the data of the existing file ``target``."""
        data = self.lookup(target, follow_final=False)
        if data is None:
            raise InputError(f"{path!r}: hardlink to {target!r}, which is not in the tree")
        data = self.data_entry(data)
        return self.add(
            Entry(
                path, EntryKind.HARDLINK, data.mode, data.uid, data.gid,
                data.mtime if mtime is None else mtime, target=data.path,
            )
        )

    def add_device(
        self,
        path: str,
        kind: EntryKind,
        major: int,
        minor: int,
        *,
        mode: int = 0o600,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
    ) -> Entry:
        if kind not in (EntryKind.CHAR, EntryKind.BLOCK):
            raise ValueError(f"device kind must be CHAR or BLOCK, not {kind}")
        return self.add(Entry(path, kind, mode, uid, gid, mtime, rdev=(major, minor)))

    def add_fifo(self, path: str, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
        return self.add(Entry(path, EntryKind.FIFO, mode, uid, gid))

    def remove(self, path: str) -> None:
        """Remove ``path`` (and a directory's whole subtree). Missing paths are ignored.

        Hardlinks to a removed file become files holding the same content.
        """
        path = _quick_norm(path)
        if path == "/" or path not in self._entries:
            return
        doomed = [path]
        if self._entries[path].kind is EntryKind.DIR:
            doomed = [p for p in self._subtree(path)]
        doomed_set = set(doomed)
        for victim in doomed:
            entry = self._entries[victim]
            if entry.kind is EntryKind.FILE:
                self._detach_hardlinks(entry, doomed_set)
        for victim in doomed:
            del self._entries[victim]
            self._children.pop(victim, None)
        parent = posixpath.dirname(path)
        self._children[parent].pop(posixpath.basename(path), None)

    def chmod(self, path: str, mode: int) -> None:
        self[path].mode = mode & 0o7777

    def chown(self, path: str, uid: int, gid: int) -> None:
        entry = self[path]
        entry.uid, entry.gid = uid, gid

    def copy(self) -> Tree:
        """A shallow copy: new entries, same content sources."""
        other = Tree()
        other._entries = {p: replace(e) for p, e in self._entries.items()}
        other._children = {p: dict(c) for p, c in self._children.items()}
        return other

    # -- internals -----------------------------------------------------------------------

    def _ensure_parent(self, parent: str, member: str) -> str:
        """Make sure directory ``parent`` exists (creating it); return its resolved path.

        Missing ancestors are made from the top down in a loop: a path's depth is bounded
        by its length, not by Python's recursion limit."""
        if parent in self._entries and self._entries[parent].kind is EntryKind.DIR:
            return parent
        missing: list[str] = []
        current = parent
        while True:
            resolved = self.resolve(current)
            existing = self._entries.get(resolved)
            if existing is not None:
                if existing.kind is not EntryKind.DIR:
                    raise InputError(f"{member}: parent {current!r} is a "
                                     f"{existing.kind.value}, not a directory")
                break
            missing.append(posixpath.basename(resolved))
            current = posixpath.dirname(resolved)
        for name in reversed(missing):
            path = posixpath.join(resolved, name)
            self._entries[path] = Entry(path, EntryKind.DIR, 0o755)
            self._children[path] = {}
            self._children[resolved][name] = None
            resolved = path
        return resolved

    def _hardlink_target(self, path: str, target: str | None, member: str | None) -> str:
        who = member or repr(path)
        if not target:
            raise InputError(f"{who}: hardlink without a target")
        norm = normalize(target, member=f"{who} (hardlink target {target!r})")
        data = self._entries.get(norm)
        if data is None:
            raise UnsafePathError(
                f"{who}: hardlink to {target!r}, which is not an earlier member of the tree"
            )
        data = self.data_entry(data)
        if data.kind is not EntryKind.FILE:
            raise InputError(f"{who}: hardlink to {target!r}, a {data.kind.value}")
        if data.path == path:
            raise InputError(f"{who}: hardlink to itself")
        return data.path

    def _detach_hardlinks(self, entry: Entry, doomed: set[str]) -> None:
        """Turn surviving hardlinks to ``entry`` into the new owner of its data."""
        links = [
            e for e in self._entries.values()
            if e.kind is EntryKind.HARDLINK and e.target == entry.path and e.path not in doomed
        ]
        if not links:
            return
        heir = links[0]
        heir.kind, heir.content, heir.target = EntryKind.FILE, entry.content, None
        for other in links[1:]:
            other.target = heir.path

    def _subtree(self, path: str) -> Iterator[str]:
        """``path`` and everything below it, parents first (a stack, not recursion)."""
        pending = [path]
        while pending:
            current = pending.pop()
            yield current
            base = "" if current == "/" else current
            pending.extend(reversed([f"{base}/{name}" for name in self._children.get(current, {})]))


def _quick_norm(path: str, *, member: str | None = None) -> str:
    """:func:`normalize` without its cost for a path that already is normal (no empty,
    ``.`` or ``..`` component, no trailing slash). A NUL byte passes: check it where it
    matters (:meth:`Tree.add`)."""
    if path.startswith("/") and "//" not in path and "/." not in path and (
        len(path) == 1 or not path.endswith("/")
    ):
        return path
    return normalize(path, member=member)


def _escape_message(who: str, target: str | None) -> str:
    return (f"{who}: symlink target {target!r} escapes the root filesystem through the "
            "tree's other symlinks; refusing it (extracted on a host, it would reach the "
            "host's files)")


def _sort_key(path: str) -> str:
    """Sort by components so ``/a/b`` comes right after ``/a`` (before ``/a-b``): with
    each ``/`` made NUL, the lowest character (which no component holds), strings compare
    as their component sequences do."""
    return path.replace("/", "\0")
