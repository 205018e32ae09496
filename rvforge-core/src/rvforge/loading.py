"""Loading whatever the user points ``rvforge audit`` or ``rvforge inspect`` at into a Tree:
a directory, a tarball, a cpio archive (any compression) or a single ELF file."""

from __future__ import annotations

from pathlib import Path

from rvforge.archives import is_tarball, read_directory, read_tarball
from rvforge.compression import open_decompressed
from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.tree import HostFile, Tree

CPIO_MAGICS = (b"070701", b"070702")


def sniff(path: Path) -> str:
    """What ``path`` holds: ``dir``, ``tar``, ``cpio``, ``elf`` or ``unknown``."""
    if path.is_dir():
        return "dir"
    try:
        with open(path, "rb") as raw:
            if raw.read(4) == b"\x7fELF":
                return "elf"
        with open_decompressed(path) as stream:
            head = stream.read(512)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Exception:  # noqa: BLE001 - corrupt compressed data: judged below
        return "unknown"
    if head[:6] in CPIO_MAGICS:
        return "cpio"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    return "unknown"


def load_path(path: Path, ctx: BuildContext) -> Tree:
    """Read ``path`` into a tree (owners as recorded; a directory keeps the host's)."""
    path = Path(path)
    kind = sniff(path)
    if kind == "dir":
        return read_directory(path, owners="preserve")
    if kind == "tar" or (kind == "unknown" and is_tarball(path)):
        return read_tarball(path, ctx.scratch("load", path.name))
    if kind == "cpio":
        from rvforge.cpio import read_cpio

        return read_cpio(path, ctx.scratch("load", path.name))
    if kind == "elf":
        tree = Tree()
        tree.add_file(f"/{path.name}", HostFile.of(path), mode=0o755)
        return tree
    raise InputError(
        f"{path}: not a directory, tarball, cpio archive or ELF file (or it is truncated)"
    )
