"""The ``dir`` and ``file`` overlays: host files added to the tree."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rvforge.components import Overlay
from rvforge.context import BuildContext
from rvforge.errors import InputError, UsageError
from rvforge.formats.directory import read_directory
from rvforge.hookspecs import hookimpl
from rvforge.numbers import parse_mode
from rvforge.tree import FileIdentity, HostFile, Tree, normalize


@dataclass
class DirOptions:
    """:param source: host directory to copy (symlinks inside it are kept as symlinks).
    :param dest: where its contents go in the image (created with parents).
    :param owners: ``root`` (0:0 for everything, default) or ``preserve`` (host owners)."""

    source: Path
    dest: str
    owners: str = "root"


class DirOverlay(Overlay[DirOptions]):
    name = "dir"
    summary = "copy a host directory into the image (--overlay DIR:/dest)"
    Options = DirOptions

    def apply(self, tree: Tree, options: DirOptions, ctx: BuildContext) -> None:
        source = Path(options.source)
        if not source.is_dir():
            raise InputError(f"overlay 'dir': {source} is not a directory")
        dest = _dest(options.dest)
        read_directory(source, tree=tree, dest=dest, owners=options.owners)


@dataclass
class FileOptions:
    """:param source: host file.
    :param dest: its path in the image; a ``dest`` ending in ``/`` is a directory the
        file goes into under its own name.
    :param mode: octal permissions (default: the host file's).
    :param uid: owner in the image.
    :param gid: group in the image."""

    source: Path
    dest: str
    mode: str | None = None
    uid: int = 0
    gid: int = 0


class FileOverlay(Overlay[FileOptions]):
    name = "file"
    summary = "add one host file to the image (--overlay FILE:/dest/path)"
    Options = FileOptions

    def apply(self, tree: Tree, options: FileOptions, ctx: BuildContext) -> None:
        source = Path(options.source)
        try:
            st = os.stat(source)
        except OSError as error:
            raise InputError(f"overlay 'file': {source}: {error.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"overlay 'file': {source} is not a regular file")
        dest = options.dest
        if dest.endswith("/"):
            dest = dest + source.name
        mode = stat.S_IMODE(st.st_mode)
        if options.mode is not None:
            mode = parse_mode(options.mode, "overlay 'file': mode", error=UsageError)
        # its identity now: a file rewritten after the audit is refused when packed
        tree.add_file(_dest(dest), HostFile(source, st.st_size, FileIdentity.of(st)),
                      mode=mode, uid=options.uid, gid=options.gid, mtime=int(st.st_mtime))


def _dest(dest: str) -> str:
    if not dest.startswith("/"):
        raise UsageError(f"overlay destination {dest!r} must be an absolute path in the image")
    return normalize(dest)


@hookimpl
def rvforge_register_overlays(register: Callable[[type[Overlay]], None]) -> None:
    register(DirOverlay)
    register(FileOverlay)
