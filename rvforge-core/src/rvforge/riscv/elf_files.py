"""What the isa and linkage auditors share: the tree's ELF files, read once per audit
(and their facts cached across audits, :mod:`rvforge.riscv.facts_cache`), and
the root's own C library."""

from __future__ import annotations

import itertools
import os
import weakref
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.riscv.elf import (
    ElfInfo,
    ElfSymbols,
    ElfUnreadableError,
    is_elf,
    read_elf,
    read_symbols,
)
from rvforge.riscv.facts_cache import (
    NOT_ELF,
    ElfFactsCache,
    Facts,
    content_key,
    host_key,
    settled,
    tree_key,
)
from rvforge.tree import Content, Entry, EntryKind, FileIdentity, HostFile, InlineBytes, Tree

__all__ = ["CACHE_ENTRIES", "ElfFile", "RootLibc", "elf_files", "is_firmware", "root_libc",
           "scan_content"]

CACHE_DIR = "elf-facts"
CACHE_ENTRIES = {f"{CACHE_DIR}/*": "elf-facts"}
"""The facts cache's files (``rvforge cache``), declared by the auditors that read it."""
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


Members = list[tuple[str, Content]]
"""A tree's regular files that could be ELF (4 bytes or more): (path, content), sorted."""
_CACHE: weakref.WeakKeyDictionary[Tree, tuple[Members, dict[str, ElfFile]]] = (
    weakref.WeakKeyDictionary())


def elf_files(tree: Tree, ctx: BuildContext | None = None) -> dict[str, ElfFile]:
    """Every regular file of ``tree`` that starts with the ELF magic, by path (sorted).

    Read once per tree state: the isa and linkage auditors of one audit share the result.
    With ``ctx`` the facts are looked up in (and added to) the warm cache under
    ``ctx.cache("elf-facts")``: first the row of this exact set of files, else each
    file's row by its identity (:mod:`rvforge.riscv.facts_cache`).
    """
    members: Members = [(e.path, c) for e in tree.walk() if e.kind is EntryKind.FILE
                        and (c := e.content) is not None and c.size >= 4]
    cached = _CACHE.get(tree)
    if cached is not None and cached[0] == members:
        return cached[1]
    cache = ElfFactsCache.open(ctx.cache(CACHE_DIR)) if ctx is not None else \
        ElfFactsCache(None)
    with cache:
        facts = _elf_facts(members, cache)
    found = {path: ElfFile(path, tree[path], f.info, f.error) for path, f in facts.items()}
    _CACHE[tree] = (members, found)
    return found


def _elf_facts(members: Members, cache: ElfFactsCache) -> dict[str, Facts]:
    """The facts of the ELF files among ``members``, by path: the cache's row for this
    set of files, else each file's row, else read (and stored, with the tree's row when
    every member's facts could be)."""
    keys = [content_key(content) for _, content in members] if cache.enabled else []
    whole = None
    if keys and None not in keys:
        whole = tree_key(zip([path for path, _ in members], cast(list[str], keys)))
        cached = cache.get_tree(whole)
        if cached is not None:
            return cached
    hits = cache.get_many(k for k in keys if k is not None)
    found: dict[str, Facts] = {}
    for (path, content), key in itertools.zip_longest(members, keys):
        facts = hits.get(key) if key is not None else None
        if facts is None:
            facts, store = scan_content(content)
            if store is not None:
                cache.put(store, facts)
            if store != key:  # not cacheable, or changed since its key was made
                whole = None
        if facts.is_elf:
            found[path] = facts
    if whole is not None:
        cache.put_tree(whole, found)
    return found


def scan_content(content: Content) -> tuple[Facts, str | None]:
    """Read one file's :class:`Facts` (4 bytes for a file that is not ELF) and the key to
    cache them under (``None``: do not cache, e.g. the file changed while read). A
    :class:`HostFile` that is no longer the file its identity describes is an
    :class:`~rvforge.errors.InputError` (see :meth:`HostFile.verify`)."""
    if isinstance(content, HostFile):
        try:
            stream = open(content.path, "rb", buffering=0)
        except OSError as error:
            raise InputError(f"{content.path}: cannot be read ({error.strerror})") from None
        with stream:
            before = FileIdentity.of(os.fstat(stream.fileno()))
            content.verify(before)
            view = content.window(stream)  # kept alive: closing a window closes the file
            facts = _facts(view)
            after = FileIdentity.of(os.fstat(stream.fileno()))
        if before != after or not settled(before):
            return facts, None
        return facts, host_key(content, before)
    if isinstance(content, InlineBytes):
        return _facts(content.open()), content_key(content)
    with content.open() as opened:
        return _facts(opened), None


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
