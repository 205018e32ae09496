"""The ``local`` provider: a directory or tarball the user already has as the base tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rvforge.components import Provider
from rvforge.context import BuildContext
from rvforge.errors import InputError, UsageError
from rvforge.formats.cpio import read_cpio
from rvforge.formats.directory import read_directory
from rvforge.formats.sniff import require_regular, sniff
from rvforge.formats.tar import is_tarball, read_tarball
from rvforge.hookspecs import hookimpl
from rvforge.tree import Tree


@dataclass
class LocalOptions:
    """:param source: a directory, a tarball (.tar, .tar.gz, .tar.xz, .tar.zst) or a cpio
        archive (an initramfs: newc or crc, compressed, concatenated).
    :param owners: for a directory: ``root`` records everything as 0:0 (default),
        ``preserve`` keeps the host's owners. Tarballs always keep what they record.
    :param release: a label for the default output name (``local-<release>``)."""

    source: Path | None = None
    owners: str = "root"
    release: str | None = None


class LocalProvider(Provider[LocalOptions]):
    name = "local"
    summary = "a directory, tarball or initramfs you already have (owners, modes, devices kept)"
    Options = LocalOptions

    def provide(self, options: LocalOptions, ctx: BuildContext) -> Tree:
        if options.source is None:
            raise UsageError("provider 'local' needs --source DIR_OR_TARBALL")
        source = Path(options.source)
        if not source.exists():
            raise InputError(f"{source}: no such file or directory (check --source)")
        if source.is_dir():
            ctx.log.info("reading directory", source=str(source), owners=options.owners)
            return read_directory(source, owners=options.owners)
        require_regular(source, "--source")
        if sniff(source) == "cpio":  # an initramfs: newc or crc, concatenated as the kernel reads
            ctx.log.info("reading cpio archive", source=str(source))
            return read_cpio(source, ctx.scratch("local"))
        if not is_tarball(source):
            raise InputError(f"{source}: not a tarball rvforge can read (tar or a cpio "
                             "newc initramfs, optionally gzip/xz/zstd/bzip2-compressed) or "
                             "it is truncated")
        ctx.log.info("reading tarball", source=str(source))
        return read_tarball(source, ctx.scratch("local"))


@hookimpl
def rvforge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(LocalProvider)
