"""Loading whatever the user points ``rvforge audit`` or ``rvforge inspect`` at into a Tree:
a directory, a tarball, a cpio archive (any compression), a single ELF file, or a package
(a wheel or other zip archive, a ``.deb``, an ``.apk``: read in memory, see
:mod:`rvforge.formats.packages`)."""

from __future__ import annotations

from pathlib import Path

from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.formats.directory import read_directory
from rvforge.formats.packages import PACKAGE_KINDS, Package, read_package
from rvforge.formats.sniff import sniff
from rvforge.formats.tar import is_tarball, read_tarball
from rvforge.tree import HostFile, Tree


def load_input(path: Path, ctx: BuildContext) -> Tree | Package:
    """Read ``path``: a :class:`Package` for packages, else a tree (owners as recorded; a
    directory keeps the host's)."""
    path = Path(path)
    kind = sniff(path)
    if kind in PACKAGE_KINDS:
        return read_package(path, kind)
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
        f"{path}: not a directory, tarball, cpio archive, ELF file or package (.whl, .zip, "
        ".deb, .apk), or it is truncated"
    )


def load_path(path: Path, ctx: BuildContext) -> Tree:
    """:func:`load_input`'s tree (a package's: its ELF members and links)."""
    loaded = load_input(path, ctx)
    return loaded.tree if isinstance(loaded, Package) else loaded
