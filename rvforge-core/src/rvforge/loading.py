"""Loading whatever the user points ``rvforge audit`` or ``rvforge inspect`` at into a Tree:
a directory, a tarball, a cpio archive (any compression) or a single ELF file."""

from __future__ import annotations

from pathlib import Path

from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.formats.directory import read_directory
from rvforge.formats.sniff import sniff
from rvforge.formats.tar import is_tarball, read_tarball
from rvforge.tree import HostFile, Tree


def load_path(path: Path, ctx: BuildContext) -> Tree:
    """Read ``path`` into a tree (owners as recorded; a directory keeps the host's)."""
    path = Path(path)
    kind = sniff(path)
    if kind == "dir":
        return read_directory(path, owners="preserve")
    if kind == "tar" or (kind == "unknown" and is_tarball(path)):
        return read_tarball(path, ctx.scratch("load", path.name))
    if kind == "cpio":
        from rvforge.formats.cpio import read_cpio

        return read_cpio(path, ctx.scratch("load", path.name))
    if kind == "elf":
        tree = Tree()
        tree.add_file(f"/{path.name}", HostFile.of(path), mode=0o755)
        return tree
    raise InputError(
        f"{path}: not a directory, tarball, cpio archive or ELF file (or it is truncated)"
    )
