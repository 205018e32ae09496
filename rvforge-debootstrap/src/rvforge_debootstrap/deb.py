"""Reading ``.deb`` files in Python: the ``ar`` container, ``control.tar`` and ``data.tar``.

A ``.deb`` is an ``ar`` archive of ``debian-binary``, ``control.tar.{gz,xz,zst}`` and
``data.tar{,.gz,.xz,.zst,.bz2}``. Tar streams are decompressed on the fly (zstd through the
``zstandard`` library, which Python's ``tarfile`` lacks).

* :func:`read_control` returns the control members (``control``, ``md5sums``,
  ``conffiles``, maintainer scripts...).
* :func:`unpack_deb` unpacks a ``.deb`` into a directory with a manifest (rvforge's
  unpacked cache): ``data.tar`` is kept whole, decompressed, so unpacking a package
  creates three files rather than one per member (creating ~5,000 small files cost more
  than decompressing them here). :func:`add_to_tree` adds such a directory to a tree,
  its files being :class:`~rvforge.HostFile` windows on that ``data.tar``.
* :func:`extract_deb` adds ``data.tar``'s members to a :class:`~rvforge.Tree` with their
  owners and modes (contents stored under a scratch directory), as ``dpkg --unpack``
  would lay them out: a directory member never replaces an existing symlink to a
  directory (merged ``/usr``).
* :func:`extract_deb_to_dir` writes ``data.tar``'s regular files, directories and links
  into a host directory, refusing anything that would leave it.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rvforge import (
    Entry,
    EntryKind,
    FileIdentity,
    FileWindow,
    HostFile,
    InputError,
    Tree,
    UnsafePathError,
    check_symlink_target,
    normalize,
)
from rvforge.formats.ar import ArMember
from rvforge.formats.ar import ar_members as read_ar
from rvforge.formats.compression import decompress_stream, is_corrupt_stream_error

_SUFFIX_COMPRESSION = {"": None, ".gz": "gz", ".xz": "xz", ".zst": "zst", ".bz2": "bz2"}


def ar_members(path: Path) -> dict[str, ArMember]:
    """The members of the ``ar`` archive at ``path`` by name (read by
    :func:`rvforge.formats.ar.ar_members`).

    :raises InputError: not an ``ar`` archive, or truncated.
    """
    with open(path, "rb") as stream:
        return read_ar(stream, os.fstat(stream.fileno()).st_size, path)


@contextmanager
def open_member(path: Path, prefix: str) -> Iterator[tuple[str, BinaryIO]]:
    """The ``control.tar*`` or ``data.tar*`` member (``prefix``) of a ``.deb``: its name
    and a stream of its decompressed bytes. Errors of a corrupt or truncated member are
    :class:`~rvforge.InputError`."""
    members = ar_members(path)
    found = [m for m in members.values() if m.name.startswith(prefix)]
    if not found:
        raise InputError(f"{path.name}: no {prefix}* member; not a binary package")
    member = found[0]
    suffix = member.name[len(prefix):]
    if suffix not in _SUFFIX_COMPRESSION:
        raise InputError(f"{path.name}: unsupported member {member.name!r}")
    file = open(path, "rb")
    raw = io.BufferedReader(FileWindow(file, member.offset, member.size), 1 << 20)
    stream = decompress_stream(raw, _SUFFIX_COMPRESSION[suffix])
    try:
        yield member.name, stream
    except (tarfile.TarError, EOFError) as error:
        raise InputError(f"{path.name}: corrupt {member.name} ({error})") from None
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{path.name}: corrupt {member.name} ({error})") from None
        raise
    finally:
        stream.close()
        raw.close()


@contextmanager
def open_tar(path: Path, prefix: str) -> Iterator[tarfile.TarFile]:
    """The ``control.tar*`` or ``data.tar*`` member of a ``.deb`` as a streaming tar
    archive."""
    with open_member(path, prefix) as (_name, stream), \
            tarfile.open(fileobj=stream, mode="r|") as archive:
        yield archive


def read_control(path: Path) -> dict[str, bytes]:
    """The regular files of ``control.tar`` by name (``control``, ``md5sums``, ``postinst``...)."""
    files: dict[str, bytes] = {}
    with open_tar(path, "control.tar") as archive:
        for member in archive:
            if member.isreg():
                name = posixpath.basename(member.name)
                data = archive.extractfile(member)
                if data is not None and name:
                    files[name] = data.read()
    if "control" not in files:
        raise InputError(f"{path.name}: control.tar has no control file")
    return files


UNPACKED_FORMAT = 2
"""Version of the unpacked layout (1 had one file per member); part of the cache path."""
MANIFEST = "manifest.json"
DATA_TAR = "data.tar"
_KINDS = {
    tarfile.REGTYPE: EntryKind.FILE, tarfile.AREGTYPE: EntryKind.FILE,
    tarfile.CONTTYPE: EntryKind.FILE, tarfile.DIRTYPE: EntryKind.DIR,
    tarfile.SYMTYPE: EntryKind.SYMLINK, tarfile.LNKTYPE: EntryKind.HARDLINK,
    tarfile.CHRTYPE: EntryKind.CHAR, tarfile.BLKTYPE: EntryKind.BLOCK,
    tarfile.FIFOTYPE: EntryKind.FIFO,
}


@dataclass(frozen=True)
class Member:
    """One ``data.tar`` member as unpacked: normalised path, metadata, for a file where its
    bytes start in the unpacked ``data.tar``, for a link its target."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int = 0
    target: str = ""
    rdev: tuple[int, int] = (0, 0)
    offset: int = 0


@dataclass
class UnpackedDeb:
    """A ``.deb`` unpacked into a host directory: :data:`DATA_TAR` (``data.tar``
    decompressed), ``control/<name>`` control members, and :data:`MANIFEST` listing the
    members in archive order. Read back with :meth:`load`; add to a tree with
    :func:`add_to_tree`."""

    root: Path
    members: list[Member]
    control: dict[str, bytes]

    @classmethod
    def load(cls, root: Path) -> UnpackedDeb:
        rows = json.loads((root / MANIFEST).read_text())
        members = [Member(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], tuple(r[8]), r[9])
                   for r in rows]
        control = {p.name: p.read_bytes() for p in (root / "control").iterdir()}
        return cls(root, members, control)

    def listed(self) -> list[str]:
        """The package's paths as dpkg's ``.list`` file has them (``/.`` for the root)."""
        return ["/." if m.path == "/" else m.path for m in self.members]


def unpack_deb(path: Path, dest: Path) -> UnpackedDeb:
    """Unpack ``path`` into the new directory ``dest`` (see :class:`UnpackedDeb`); the
    manifest is written last, so a directory without one is incomplete."""
    (dest / "control").mkdir(parents=True)
    control = read_control(path)
    for name, data in control.items():
        (dest / "control" / name).write_bytes(data)
    with open_member(path, "data.tar") as (name, stream):
        with open(dest / DATA_TAR, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        members = _manifest(dest / DATA_TAR, f"{path.name}: {name}")
    rows = [[m.path, m.kind, m.mode, m.uid, m.gid, m.mtime, m.size, m.target, list(m.rdev),
             m.offset] for m in members]
    (dest / MANIFEST).write_text(json.dumps(rows, separators=(",", ":")))
    return UnpackedDeb(dest, members, control)


def _manifest(data_tar: Path, label: str) -> list[Member]:
    """The members of the uncompressed tar file ``data_tar``, checked: safe names, known
    types, file data inside the file. Data is skipped by seeking, never read."""
    total = data_tar.stat().st_size
    members: list[Member] = []
    with tarfile.open(data_tar, "r:") as archive:
        for info in archive:
            where = f"{label}: member {info.name!r}"
            name = normalize(info.name, member=where)
            kind = _KINDS.get(info.type)
            if kind is None:
                raise InputError(f"{where} has an unsupported type {info.type!r}")
            target = ""
            if kind is EntryKind.FILE and info.offset_data + info.size > total:
                raise InputError(f"{where}: data truncated")
            if kind is EntryKind.SYMLINK:
                target = info.linkname
            elif kind is EntryKind.HARDLINK:
                if info.linkname.startswith("/"):
                    raise UnsafePathError(f"{where} is a hardlink to an absolute path")
                target = normalize(info.linkname, member=where)
            file = kind is EntryKind.FILE
            members.append(Member(name, kind.value, info.mode & 0o7777, info.uid, info.gid,
                                  int(info.mtime), info.size if file else 0, target,
                                  (info.devmajor, info.devminor),
                                  info.offset_data if file else 0))
    return members


def add_to_tree(unpacked: UnpackedDeb, tree: Tree) -> None:
    """Add an unpacked package's members to ``tree`` as ``dpkg --unpack`` lays them out:
    later members and packages replace earlier ones, and a directory member never replaces
    an existing symlink to a directory (merged ``/usr``)."""
    data = unpacked.root / DATA_TAR
    identity = FileIdentity.of(data.stat())  # a later change of the file fails the build
    label = unpacked.root.name
    for m in unpacked.members:
        kind = EntryKind(m.kind)
        if kind is EntryKind.DIR:
            existing = tree.lookup(m.path)
            if existing is not None and existing.kind is EntryKind.DIR and (
                tree.get(m.path) is not existing
            ):
                continue  # a symlink to a directory stays, as dpkg keeps it
        entry = Entry(m.path, kind, m.mode, m.uid, m.gid, m.mtime)
        if kind is EntryKind.FILE:
            entry.content = HostFile(data, m.size, identity, m.offset)
        elif kind in (EntryKind.SYMLINK, EntryKind.HARDLINK):
            entry.target = m.target
        elif kind in (EntryKind.CHAR, EntryKind.BLOCK):
            entry.rdev = m.rdev
        tree.add(entry, member=f"{label}: {m.path}")


def extract_deb(path: Path, tree: Tree, scratch: Path) -> list[str]:
    """Add the members of ``path``'s ``data.tar`` to ``tree`` (owners and modes kept);
    return the package's paths as dpkg lists them (``/.``, ``/usr``, ``/usr/bin/dpkg``...).

    :param scratch: a directory for the member contents; it must outlive the tree's use.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=scratch))
    dest.rmdir()
    unpacked = unpack_deb(path, dest)
    add_to_tree(unpacked, tree)
    return unpacked.listed()


def extract_deb_to_dir(path: Path, dest: Path) -> list[str]:
    """Write ``path``'s ``data.tar`` into the host directory ``dest`` (created); return the
    paths written. Owners are not kept (no root needed); modes are, minus setuid/setgid.

    Members are refused when their name climbs out, when a link would point outside
    ``dest``, or when a parent on the way is a symlink (nothing is written through one).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written: list[str] = []
    with open_tar(path, "data.tar") as archive:
        for member in archive:
            where = f"{path.name}: member {member.name!r}"
            rel = normalize(member.name, member=where).lstrip("/")
            if not rel:
                continue
            target = root / rel
            _check_parents(root, target, where)
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                target.mkdir(exist_ok=True)
                target.chmod(member.mode & 0o777 | 0o700)
            elif member.isreg():
                source = archive.extractfile(member)
                assert source is not None  # a regular member always has a file object
                _replace(target)
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                target.chmod(member.mode & 0o777)
            elif member.issym():
                check_symlink_target("/" + rel, member.linkname)
                _replace(target)
                os.symlink(member.linkname, target)
            elif member.islnk():
                source_rel = normalize(member.linkname, member=where).lstrip("/")
                _replace(target)
                os.link(root / source_rel, target)
            else:
                continue  # devices and fifos cannot be made without root; debs rarely hold them
            written.append("/" + rel)
    return written


def _check_parents(root: Path, target: Path, where: str) -> None:
    current = target.parent
    while current != root:
        if current.is_symlink():
            raise UnsafePathError(f"{where}: parent {current} is a symlink; refusing to write "
                                  "through it")
        current = current.parent


def _replace(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
