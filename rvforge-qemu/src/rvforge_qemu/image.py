"""Reading an image's files on the host: to name the binary behind a guest fault, and to
unpack a tree for ``qemu-user``. An initramfs is read with rvforge's loader; an ext4 disk
image is unpacked with e2fsprogs' ``debugfs -R 'rdump'`` (no root, no mount)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from rvforge import (
    Artifact,
    BuildContext,
    EntryKind,
    InputError,
    SharedDirectory,
    ToolMissingError,
    Tree,
    load_path,
)

SHARED_FILES_CAP = 2000
"""How many files of the shared directories are looked at to name a faulting binary."""


def image_file_finder(artifact: Artifact, ctx: BuildContext,
                      shares: Sequence[SharedDirectory] = ()) -> Callable[[str], list[str]]:
    """A function giving the paths of regular files in the image called ``name``, then
    those of the shared directories, each as its host path and where the guest sees it
    (at most :data:`SHARED_FILES_CAP` shared files are looked at; a note says when the
    cap is hit); the image is read on the first call, and an unreadable one finds
    nothing."""
    cache: list[list[tuple[str, str]]] = []

    def find(name: str) -> list[str]:
        if not cache:
            try:
                cache.append(_file_names(artifact, ctx))
            except (InputError, ToolMissingError, OSError) as error:
                ctx.log.warning("cannot read the image to name the binary", error=str(error))
                cache.append([])
            cache.append(_shared_names(shares, ctx))
        return [*sorted(path for base, path in cache[0] if base == name),
                *(path for base, path in cache[1] if base == name)]

    return find


def _shared_names(shares: Sequence[SharedDirectory], ctx: BuildContext
                  ) -> list[tuple[str, str]]:
    """(file name, ``HOST (shared at GUEST)``) of the shares' files, up to the cap."""
    found = []
    files = ((share, path) for share in shares for path in share.files())
    for index, (share, path) in enumerate(files):
        if index == SHARED_FILES_CAP:
            ctx.log.warning(f"looked for the faulting binary among the first "
                            f"{SHARED_FILES_CAP} files of the shares only",
                            shares=", ".join(str(s.host) for s in shares))
            break
        found.append((path.name, f"{path} (shared at {share.guest_path(path)})"))
    return found


def _file_names(artifact: Artifact, ctx: BuildContext) -> list[tuple[str, str]]:
    if artifact.kind == "disk":
        root = unpack_image(artifact, ctx.scratch("image", artifact.path.name), ctx)
        return [(name, "/" + os.path.relpath(os.path.join(top, name), root))
                for top, _, names in os.walk(root) for name in names]
    tree = load_path(artifact.path, ctx)
    return [(entry.name, entry.path) for entry in tree
            if entry.kind in (EntryKind.FILE, EntryKind.HARDLINK)]


def unpack_image(artifact: Artifact, dest: Path, ctx: BuildContext) -> Path:
    """Write the image's files, directories and links under ``dest`` (device nodes and
    ownership are skipped: the host copy is for reading and for ``qemu-user``)."""
    dest.mkdir(parents=True, exist_ok=True)
    if artifact.kind == "disk":
        debugfs = shutil.which("debugfs") or shutil.which("/sbin/debugfs")
        if debugfs is None:
            raise ToolMissingError("debugfs is not installed: install it with "
                                   "`sudo apt-get install e2fsprogs`")
        result = subprocess.run([debugfs, "-R", f"rdump / {dest}", str(artifact.path)],
                                check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise InputError(f"{artifact.path}: debugfs cannot read it: "
                             f"{result.stderr.strip()}")
        return dest
    write_tree(load_path(artifact.path, ctx), dest)
    return dest


def write_tree(tree: Tree, dest: Path) -> None:
    """Materialise ``tree`` under ``dest`` (hard links last: their targets may sort later)."""
    links = []
    for entry in tree:
        if entry.path == "/":
            continue
        host = dest / entry.path.lstrip("/")
        if entry.kind is EntryKind.DIR:
            host.mkdir(exist_ok=True)
            host.chmod(entry.mode | 0o700)
        elif entry.kind is EntryKind.SYMLINK:
            os.symlink(entry.target or "", host)
        elif entry.kind is EntryKind.HARDLINK:
            links.append((host, dest / (entry.target or "").lstrip("/")))
        elif entry.kind is EntryKind.FILE:
            assert entry.content is not None
            with entry.content.open() as source, open(host, "wb") as target:
                shutil.copyfileobj(source, target)
            host.chmod(entry.mode & 0o777 | 0o600)
    for host, original in links:
        os.link(original, host)
