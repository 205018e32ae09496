"""What the isa and linkage auditors share: the tree's ELF files, read once, and the
root's own C library."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from rvforge.elf import ElfInfo, ElfUnreadableError, is_elf, read_elf
from rvforge.tree import Entry, EntryKind, Tree

FIRMWARE_DIRS = ("/lib/firmware/", "/usr/lib/firmware/")
"""Firmware for other processors (DSPs, GPUs) is often ELF; it never runs on the CPU."""

MUSL_LOADERS = ("/lib/ld-musl-riscv64.so.1", "/lib/ld-musl-riscv64-sf.so.1")
GLIBC_LOADERS = ("/lib/ld-linux-riscv64-lp64d.so.1", "/lib/ld-linux-riscv64-lp64.so.1")


@dataclass(frozen=True)
class ElfFile:
    """One ELF file of the tree: its info, or why it could not be read."""

    path: str
    entry: Entry
    info: ElfInfo | None
    error: str | None = None


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


def elf_files(tree: Tree) -> dict[str, ElfFile]:
    """Every regular file of ``tree`` that starts with the ELF magic, by path (sorted).

    Read once per tree state: the isa and linkage auditors of one audit share the result.
    """
    entries = [e for e in tree.walk() if e.kind is EntryKind.FILE and e.size >= 4]
    key = tuple((e.path, id(e.content), e.size) for e in entries)
    cached = _CACHE.get(tree)
    if cached is not None and cached[0] == key:
        return cached[1]
    found: dict[str, ElfFile] = {}
    for entry in entries:
        assert entry.content is not None
        with entry.content.open() as stream:
            if not is_elf(stream.read(4)):
                continue
            stream.seek(0)
            try:
                found[entry.path] = ElfFile(entry.path, entry, read_elf(stream))
            except ElfUnreadableError as error:
                found[entry.path] = ElfFile(entry.path, entry, None, str(error))
    _CACHE[tree] = (key, found)
    return found


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
