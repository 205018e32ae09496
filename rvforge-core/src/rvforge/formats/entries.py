"""What the tar, cpio and ext4 writers share: the device nodes every image needs and
reading a file entry's bytes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import InputError
from rvforge.tree import EMPTY, Entry, EntryKind, HostFile, Tree

__all__ = ["read_content", "with_device_nodes"]

BLOCK = 1 << 20
PATH_MAX = 4096
"""The kernel's longest path, its NUL included: a longer name is dropped by the guest."""
NAME_MAX = 255
"""Longest path component (bytes)."""
MAX_ID = 0xFFFFFFFE
"""Highest uid/gid (32 bits; ``0xFFFFFFFF`` is ``(uid_t)-1``, "no owner")."""
MAX_MAJOR = (1 << 12) - 1
MAX_MINOR = (1 << 20) - 1
"""Linux's ``dev_t``: a 12-bit major and a 20-bit minor number."""

CONSOLE = ("/dev/console", 5, 1, 0o600)
NULL = ("/dev/null", 1, 3, 0o666)


def with_device_nodes(tree: Tree) -> Tree:
    """``tree`` itself, or a copy with ``/dev``, ``/dev/console`` and ``/dev/null``
    added where they are missing (an existing entry of any kind is kept)."""
    missing = [node for node in (CONSOLE, NULL)
               if tree.lookup(node[0], follow_final=False) is None]
    if not missing:
        return tree
    tree = tree.copy()
    if tree.lookup("/dev") is None:
        tree.add_dir("/dev")
    for path, major, minor, mode in missing:
        tree.add_device(path, EntryKind.CHAR, major, minor, mode=mode)
    return tree


def write_scratch(out: BinaryIO, block: bytes, path: Path) -> None:
    """``out.write(block)`` for a scratch copy at ``path``: a failure (a full ``TMPDIR``)
    is an :class:`InputError` that blames the scratch space, not the archive being read."""
    try:
        out.write(block)
    except OSError as error:
        raise InputError(f"{path}: cannot write a scratch copy ({error.strerror or error}); "
                         "the scratch space is full or unwritable: set TMPDIR to a directory "
                         "on a larger disk") from None


def check_header_fields(entry: Entry, fmt: str) -> None:
    """Refuse, with an :class:`InputError` naming the member, an entry whose header
    fields no guest can read back: a uid or gid outside ``0..MAX_ID``, a path or symlink
    target of :data:`PATH_MAX` bytes or more, a component over :data:`NAME_MAX`, a device
    number outside Linux's ``dev_t``. ``fmt`` names the format in the message."""
    where = f"{entry.path[:200]!r}" + ("..." if len(entry.path) > 200 else "")
    for name, value in (("uid", entry.uid), ("gid", entry.gid)):
        if not 0 <= value <= MAX_ID:
            raise InputError(f"{where}: {name} {value} cannot be written to {fmt} (owners "
                             f"are 0..{MAX_ID}); fix the source or the overlay's {name}")
    encoded = entry.path.encode("utf-8", "surrogateescape")
    if len(encoded) >= PATH_MAX:
        raise InputError(f"{where}: its path is {len(encoded)} bytes, over the kernel's "
                         f"PATH_MAX ({PATH_MAX}, NUL included); the guest would drop it")
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        raise InputError(f"{where}: a path component of {longest} bytes, over NAME_MAX "
                         f"({NAME_MAX})")
    if entry.kind is EntryKind.SYMLINK and len(
            (entry.target or "").encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise InputError(f"{where}: symlink target over PATH_MAX ({PATH_MAX} bytes)")
    if entry.rdev is not None:
        major, minor = entry.rdev
        if not (0 <= major <= MAX_MAJOR and 0 <= minor <= MAX_MINOR):
            raise InputError(f"{where}: device number {major},{minor} is outside Linux's "
                             f"dev_t (major 0..{MAX_MAJOR}, minor 0..{MAX_MINOR})")


def read_content(entry: Entry) -> Iterator[bytes]:
    """The bytes of file ``entry`` in blocks, exactly ``entry.size`` of them; a source
    that cannot be read or has shrunk since the tree was built is an :class:`InputError`."""
    content = entry.content if entry.content is not None else EMPTY
    where = f"{entry.path}: source {content.path}" if isinstance(content, HostFile) \
        else f"{entry.path}:"
    remaining = content.size
    try:
        with content.open() as source:
            while remaining:
                block = source.read(min(BLOCK, remaining))
                if not block:
                    raise InputError(f"{where} is shorter than when the tree was built "
                                     f"({remaining} bytes missing); rebuild")
                remaining -= len(block)
                yield block
    except OSError as error:
        raise InputError(f"{where} cannot be read ({error.strerror or error})") from None
