"""What the tar, cpio and ext4 writers share: the device nodes every image needs and
reading a file entry's bytes back."""

from __future__ import annotations

from collections.abc import Iterator

from rvforge.errors import InputError
from rvforge.tree import EMPTY, Entry, EntryKind, HostFile, Tree

__all__ = ["read_content", "with_device_nodes"]

BLOCK = 1 << 20

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
