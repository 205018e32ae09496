"""Reading ``.deb`` files in Python: the ``ar`` container, ``control.tar`` and ``data.tar``.

A ``.deb`` is an ``ar`` archive of ``debian-binary``, ``control.tar.{gz,xz,zst}`` and
``data.tar{,.gz,.xz,.zst,.bz2}``. Tar streams are decompressed on the fly (zstd through the
``zstandard`` library, which Python's ``tarfile`` lacks).

* :func:`read_control` returns the control members (``control``, ``md5sums``,
  ``conffiles``, maintainer scripts...).
* :func:`extract_deb` adds ``data.tar``'s members to a :class:`~rvforge.Tree` with their
  owners and modes (contents stored under a scratch directory), as ``dpkg --unpack``
  would lay them out: a directory member never replaces an existing symlink to a
  directory (merged ``/usr``).
* :func:`extract_deb_to_dir` writes ``data.tar``'s regular files, directories and links
  into a host directory, refusing anything that would leave it.
"""

from __future__ import annotations

import io
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

from rvforge import EntryKind, InputError, Tree, UnsafePathError
from rvforge.archives import ContentStore, add_tar_member
from rvforge.compression import decompress_stream, is_corrupt_stream_error
from rvforge.tree import check_symlink_target, normalize

AR_MAGIC = b"!<arch>\n"
_SUFFIX_COMPRESSION = {"": None, ".gz": "gz", ".xz": "xz", ".zst": "zst", ".bz2": "bz2"}


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int
    size: int


def ar_members(path: Path) -> dict[str, ArMember]:
    """The members of the ``ar`` archive at ``path`` by name.

    :raises InputError: not an ``ar`` archive, or truncated.
    """
    members: dict[str, ArMember] = {}
    with open(path, "rb") as stream:
        if stream.read(8) != AR_MAGIC:
            raise InputError(f"{path.name}: not a .deb (no ar header)")
        total = os.fstat(stream.fileno()).st_size
        while True:
            header = stream.read(60)
            if not header:
                break
            if len(header) != 60 or header[58:60] != b"`\n":
                raise InputError(f"{path.name}: corrupt ar member header")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise InputError(f"{path.name}: corrupt ar member size") from None
            offset = stream.tell()
            if offset + size > total:
                raise InputError(f"{path.name}: truncated (member {name!r} runs past the end)")
            members[name] = ArMember(name, offset, size)
            stream.seek(offset + size + (size & 1))
    return members


class _Slice(io.RawIOBase):
    """A read-only window on part of a file."""

    def __init__(self, raw: BinaryIO, offset: int, size: int) -> None:
        self._raw = raw
        self._left = size
        raw.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        count = self._raw.readinto(view)  # type: ignore[attr-defined]
        self._left -= count
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_tar(path: Path, prefix: str) -> Iterator[tarfile.TarFile]:
    """Open the ``control.tar*`` or ``data.tar*`` member (``prefix``) of a ``.deb`` as a
    streaming tar archive."""
    members = ar_members(path)
    found = [m for m in members.values() if m.name.startswith(prefix)]
    if not found:
        raise InputError(f"{path.name}: no {prefix}* member; not a binary package")
    member = found[0]
    suffix = member.name[len(prefix):]
    if suffix not in _SUFFIX_COMPRESSION:
        raise InputError(f"{path.name}: unsupported member {member.name!r}")
    raw = io.BufferedReader(_Slice(open(path, "rb"), member.offset, member.size), 1 << 20)
    stream = decompress_stream(raw, _SUFFIX_COMPRESSION[suffix])  # type: ignore[arg-type]
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            yield archive
    except (tarfile.TarError, EOFError) as error:
        raise InputError(f"{path.name}: corrupt {member.name} ({error})") from None
    except Exception as error:
        if is_corrupt_stream_error(error):
            raise InputError(f"{path.name}: corrupt {member.name} ({error})") from None
        raise
    finally:
        stream.close()
        raw.close()


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


def extract_deb(path: Path, tree: Tree, scratch: Path) -> list[str]:
    """Add the members of ``path``'s ``data.tar`` to ``tree``; return the package's paths as
    dpkg lists them (``/.``, ``/usr``, ``/usr/bin/dpkg``...), in archive order.

    :param scratch: directory for member contents (one file per member); it must outlive
        the tree's use.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    store = ContentStore(Path(tempfile.mkdtemp(prefix=f"{path.stem}-", dir=scratch)))
    label = path.name
    listed: list[str] = []
    with open_tar(path, "data.tar") as archive:
        for member in archive:
            name = normalize(member.name, member=f"{label}: {member.name}")
            listed.append("/." if name == "/" else name)
            if member.isdir():
                existing = tree.lookup(name)
                if existing is not None and existing.kind is EntryKind.DIR:
                    if tree.get(name) is existing:  # a real directory: take its metadata
                        add_tar_member(tree, member, archive, store, label)
                    continue  # a symlink to a directory stays (dpkg keeps it)
            add_tar_member(tree, member, archive, store, label)
    return listed


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
                _replace(target)
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)  # type: ignore[misc]
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
