"""What the isa and linkage auditors share: the tree's ELF files, read once per audit
(and their facts cached across audits, :mod:`rvforge.elf_cache`), and the root's own C
library."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import BinaryIO

from rvforge.context import BuildContext
from rvforge.elf import ElfInfo, ElfSymbols, ElfUnreadableError, is_elf, read_elf, read_symbols
from rvforge.elf_cache import NOT_ELF, ElfFactsCache, Facts, content_key, settled
from rvforge.tree import Content, Entry, EntryKind, HostFile, InlineBytes, Tree

FIRMWARE_DIRS = ("/lib/firmware/", "/usr/lib/firmware/")
"""Firmware for other processors (DSPs, GPUs) is often ELF; it never runs on the CPU."""

MUSL_LOADERS = ("/lib/ld-musl-riscv64.so.1", "/lib/ld-musl-riscv64-sf.so.1")
GLIBC_LOADERS = ("/lib/ld-linux-riscv64-lp64d.so.1", "/lib/ld-linux-riscv64-lp64.so.1")


@dataclass
class ElfFile:
    """One ELF file of the tree: its info, or why it could not be read.

    Its symbol tables are read on first use of :meth:`symbols` (only objects that lack
    extensions of the target, and the deep sweep, need them).
    """

    path: str
    entry: Entry
    info: ElfInfo | None
    error: str | None = None
    _symbols: ElfSymbols | None = field(default=None, repr=False, compare=False)

    def symbols(self) -> ElfSymbols:
        """The file's :class:`ElfSymbols`; raises :class:`ElfUnreadableError`."""
        if self._symbols is None:
            assert self.entry.content is not None
            with self.entry.content.open() as stream:
                self._symbols = read_symbols(stream)
        return self._symbols

    @property
    def symbols_read(self) -> bool:
        """Whether :meth:`symbols` has read the symbol tables."""
        return self._symbols is not None
@dataclass(frozen=True)
class RootLibc:
    """The C library a root filesystem's programs load.

    :param flavor: ``glibc`` or ``musl``.
    :param loader: the dynamic loader's path in the tree.
    :param abi: the loader's ABI from its ``e_flags`` (``lp64d``), if readable.
    """

    flavor: str
    loader: str
    abi: str | None


_CACHE: weakref.WeakKeyDictionary[Tree, tuple[tuple, dict[str, ElfFile]]] = (
    weakref.WeakKeyDictionary())


def elf_files(tree: Tree, ctx: BuildContext | None = None) -> dict[str, ElfFile]:
    """Every regular file of ``tree`` that starts with the ELF magic, by path (sorted).

    Read once per tree state: the isa and linkage auditors of one audit share the result.
    With ``ctx`` the facts of each file are looked up in (and added to) the warm cache
    under ``ctx.cache("elf-facts")``, keyed by the file's identity.
    """
    entries = [e for e in tree.walk() if e.kind is EntryKind.FILE and e.size >= 4]
    key = tuple((e.path, id(e.content), e.size) for e in entries)
    cached = _CACHE.get(tree)
    if cached is not None and cached[0] == key:
        return cached[1]
    found: dict[str, ElfFile] = {}
    cache = ElfFactsCache.open(ctx.cache("elf-facts")) if ctx is not None else \
        ElfFactsCache(None)
    with cache:
        keys = {e.path: content_key(e.content) for e in entries} if cache.enabled else {}
        hits = cache.get_many(k for k in keys.values() if k is not None)
        for entry in entries:
            assert entry.content is not None
            facts = hits.get(keys.get(entry.path) or "")
            if facts is None:
                facts, store = scan_content(entry.content)
                if store is not None:
                    cache.put(store, facts)
            if facts.is_elf:
                found[entry.path] = ElfFile(entry.path, entry, facts.info, facts.error)
    _CACHE[tree] = (key, found)
    return found


def scan_content(content: Content) -> tuple[Facts, str | None]:
    """Read one file's :class:`Facts` (4 bytes for a file that is not ELF) and the key to
    cache them under (``None``: do not cache, e.g. the file changed while read)."""
    if isinstance(content, HostFile):
        with open(content.path, "rb", buffering=0) as stream:
            before = os.fstat(stream.fileno())
            facts = _facts(stream)
            after = os.fstat(stream.fileno())
        unchanged = (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
            after.st_size, after.st_mtime_ns, after.st_ctime_ns)
        return facts, content_key(content, before) if unchanged and settled(before) else None
    if isinstance(content, InlineBytes):
        return _facts(content.open()), content_key(content)
    with content.open() as stream:
        return _facts(stream), None


def _facts(stream: BinaryIO) -> Facts:
    if not is_elf(stream.read(4)):
        return NOT_ELF
    try:
        return Facts(read_elf(stream))
    except ElfUnreadableError as error:
        return Facts(error=str(error))


def root_libc(tree: Tree, files: dict[str, ElfFile]) -> RootLibc | None:
    """The root's C library, from the dynamic loader it ships (``None``: no loader)."""
    for flavor, loaders in (("musl", MUSL_LOADERS), ("glibc", GLIBC_LOADERS)):
        for loader in loaders:
            entry = tree.lookup(loader)
            if entry is None:
                continue
            resolved = tree.resolve(loader)
            elf = files.get(resolved)
            abi = elf.info.abi if elf is not None and elf.info and elf.info.is_riscv else None
            if abi is None:
                abi = "lp64" if loader.endswith(("-sf.so.1", "-lp64.so.1")) else "lp64d"
            return RootLibc(flavor, loader, abi)
    return None


def is_firmware(path: str) -> bool:
    return path.startswith(FIRMWARE_DIRS)
