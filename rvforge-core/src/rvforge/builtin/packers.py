"""Built-in packers: ``cpio`` (initramfs), ``tar`` and ``ext4`` (disk image).

Each writes the tree to the temporary ``output`` the pipeline hands it, deterministically:
the same tree and ``SOURCE_DATE_EPOCH`` give the same bytes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rvforge.components import Packer
from rvforge.context import BuildContext
from rvforge.formats.compression import compression_of, open_compressed
from rvforge.formats.cpio import write_cpio
from rvforge.formats.ext4 import write_ext4
from rvforge.formats.tarwriter import write_tar
from rvforge.hookspecs import hookimpl
from rvforge.tree import Tree


class _StreamPacker(Packer):
    """A packer that streams the tree through ``write`` into a (compressed) file."""

    write: ClassVar[Callable[..., None]]

    def pack(self, tree: Tree, output: Path, fmt: str, ctx: BuildContext) -> None:
        with ctx.progress.task(f"writing {fmt}", tree.stats().file_bytes, bytes=True) as task, \
                open_compressed(output, compression_of(fmt)) as stream:
            type(self).write(tree, stream, epoch=ctx.source_date_epoch, progress=task)


class CpioPacker(_StreamPacker):
    name = "cpio"
    summary = ("initramfs: cpio newc written by rvforge (owners from the tree, /dev/console, "
               "sorted, reproducible), gzip/zstd/xz or uncompressed")
    suffixes: ClassVar[tuple[str, ...]] = (".cpio", ".cpio.gz", ".cpio.zst", ".cpio.xz")
    kind = "initramfs"
    write = staticmethod(write_cpio)


class TarPacker(_StreamPacker):
    name = "tar"
    summary = ("tar (pax) with numeric owners, devices and hardlinks, reproducible; "
               "gzip/zstd/xz or uncompressed")
    suffixes: ClassVar[tuple[str, ...]] = (".tar", ".tar.gz", ".tar.zst", ".tar.xz")
    kind = "tar"
    write = staticmethod(write_tar)


class Ext4Packer(Packer):
    name = "ext4"
    summary = ("ext4 disk image via e2fsprogs' mke2fs -d (owners and devices set without "
               "root), for payloads too large for RAM")
    suffixes: ClassVar[tuple[str, ...]] = (".ext4",)
    kind = "disk"

    def pack(self, tree: Tree, output: Path, fmt: str, ctx: BuildContext) -> None:
        staging = Path(tempfile.mkdtemp(prefix="ext4-", dir=ctx.scratch("packers")))
        try:
            with ctx.progress.task("staging ext4", tree.stats().file_bytes,
                                   bytes=True) as task:
                write_ext4(tree, output, epoch=ctx.source_date_epoch, scratch=staging,
                           progress=task)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # a copy of every file


@hookimpl
def rvforge_register_packers(register: Callable[[type[Packer]], None]) -> None:
    register(CpioPacker)
    register(TarPacker)
    register(Ext4Packer)
