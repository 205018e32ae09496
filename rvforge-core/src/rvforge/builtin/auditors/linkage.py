"""The ``linkage`` auditor: will the dynamic loader find what every program needs?

For each dynamically linked RISC-V ELF: ``PT_INTERP`` must exist in the tree (through
its symlinks); every ``DT_NEEDED`` must resolve the way the root's loader searches —
``DT_RPATH`` (when there is no ``DT_RUNPATH``), ``DT_RUNPATH`` (``$ORIGIN`` expanded), then
``/etc/ld.so.conf`` and its includes (glibc) or ``/etc/ld-musl-riscv64.path`` (musl, which
replaces the defaults), then the default directories; the symbol versions it needs must
be defined by the library that resolves. An object built for glibc on a musl root (or
the reverse) is named as such, and its other linkage findings are left out: they all
follow from that one.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Iterator

from rvforge.components import Auditor
from rvforge.context import BuildContext
from rvforge.findings import Finding, FindingCode, Severity
from rvforge.machines import Machine
from rvforge.numbers import is_decimal
from rvforge.riscv.elf import ElfInfo
from rvforge.riscv.elf_files import CACHE_ENTRIES, ElfFile, RootLibc, elf_files, root_libc
from rvforge.tree import Tree

GLIBC_DEFAULT_DIRS = ("/lib/riscv64-linux-gnu", "/usr/lib/riscv64-linux-gnu", "/lib64/lp64d",
                      "/usr/lib64/lp64d", "/lib", "/usr/lib")
"""glibc's trusted directories for riscv64 (slibdir/libdir, multiarch as on Debian)."""
MUSL_DEFAULT_DIRS = ("/lib", "/usr/local/lib", "/usr/lib")
"""musl's default search path (``ldso/dynlink.c``)."""
MUSL_PATH_FILE = "/etc/ld-musl-riscv64.path"

GLIBC_SONAMES = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                 "libresolv.so.2", "libutil.so.1")
MUSL_SONAMES = ("libc.musl-riscv64.so.1",)


class LinkageAuditor(Auditor):
    """Interpreters, DT_NEEDED, symbol versions and the libc family of every ELF."""

    name = "linkage"
    summary = "PT_INTERP, DT_NEEDED (RUNPATH, ld.so.conf, musl path) and libc family"
    codes = (
        FindingCode("interp-missing", "The program's dynamic loader (PT_INTERP) is not in the tree",
                    "add the C library whose loader it names"),
        FindingCode("needed-missing",
                    "A DT_NEEDED library is not found on the loader's search path",
                    "add the packages that ship the missing libraries"),
        FindingCode("libc-mismatch", "A glibc object on a musl root, or the reverse",
                    "use a root with the C library the file was built for, or rebuild it"),
        FindingCode("symbol-version-missing",
                    "A required symbol version is not defined by the library",
                    "use a newer release of the root, or rebuild against it"),
    )
    cache_entries = CACHE_ENTRIES

    def audit(self, tree: Tree, machine: Machine, ctx: BuildContext) -> Iterator[Finding]:
        files = elf_files(tree, ctx)
        libc = root_libc(tree, files)
        if libc is None and len(tree) <= 2 and ctx.artifact_kind is None:
            return  # a lone ELF file (rvforge audit FILE): there is no root to link against
        dirs = search_dirs(tree, libc)
        for elf in files.values():
            info = elf.info
            if info is None or not info.is_riscv or not info.dynamic:
                continue
            flavor = libc_of(info)
            if libc is not None and flavor is not None and flavor != libc.flavor:
                yield _libc_mismatch(elf.path, info, flavor, libc)
                continue
            if info.interp and tree.lookup(info.interp) is None:
                yield Finding(Severity.ERROR, "interp-missing", elf.path,
                              f"{elf.path} needs the loader {info.interp}, which is not in "
                              "the tree: the kernel cannot start it ('not found'); add the "
                              "C library that provides it")
            yield from self._needed(tree, files, elf, info, dirs)

    def _needed(self, tree: Tree, files: dict[str, ElfFile], elf: ElfFile, info: ElfInfo,
                dirs: list[str]) -> Iterator[Finding]:
        origin = posixpath.dirname(elf.path)
        own = [] if info.runpath else [_origin(d, origin) for d in info.rpath]
        own += [_origin(d, origin) for d in info.runpath]
        for name in info.needed:
            found = resolve_needed(tree, name, own + dirs)
            if found is None:
                where = ", ".join(own + dirs)
                yield Finding(Severity.ERROR, "needed-missing", elf.path,
                              f"{elf.path} needs {name}, which is in none of {where}: "
                              "it will not load; add the package that ships it",
                              details={"needed": name})
                continue
            wanted = info.version_needs.get(name, ())
            provider = files.get(tree.resolve(found))
            defined = set(provider.info.version_defs) if provider and provider.info else set()
            if not wanted or not defined:
                continue
            absent = [v for v in wanted if v not in defined]
            if absent:
                yield Finding(Severity.ERROR, "symbol-version-missing", elf.path,
                              f"{elf.path} needs {', '.join(absent)} from {name}, but "
                              f"{found} does not define {'it' if len(absent) == 1 else 'them'}"
                              f" (newest: {_newest(defined)}): it was built against a newer "
                              "library than this root has",
                              details={"needed": name, "versions": absent})


def search_dirs(tree: Tree, libc: RootLibc | None) -> list[str]:
    """The loader's search path after the object's own RPATH/RUNPATH (each directory once:
    a directory listed twice is searched once, so the path is no longer than the tree)."""
    if libc is not None and libc.flavor == "musl":
        if tree.is_file(MUSL_PATH_FILE):
            text = tree.read_text(MUSL_PATH_FILE)
            return _unique(d for d in text.replace(":", "\n").split() if d.startswith("/"))
        return list(MUSL_DEFAULT_DIRS)
    return _unique([*ld_so_conf(tree, "/etc/ld.so.conf"), *GLIBC_DEFAULT_DIRS])


def ld_so_conf(tree: Tree, path: str, depth: int = 0,
               seen: set[str] | None = None) -> list[str]:
    """Directories listed in an ``ld.so.conf`` file and its ``include`` globs. Each file is
    read once (files that include each other's directory would otherwise be read once per
    path through them: exponential in their number), at most :data:`MAX_INCLUDE_DEPTH`
    includes deep."""
    seen = set() if seen is None else seen
    real = tree.resolve(path)
    if depth > MAX_INCLUDE_DEPTH or real in seen or not tree.is_file(path):
        return []
    seen.add(real)
    dirs: list[str] = []
    for line in tree.read_text(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            for pattern in line.split()[1:]:
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(path), pattern)
                folder, glob = posixpath.split(pattern)
                if not tree.is_dir(folder):
                    continue
                for entry in tree.children(folder):
                    if fnmatch.fnmatch(entry.name, glob):
                        dirs += ld_so_conf(tree, posixpath.join(folder, entry.name),
                                           depth + 1, seen)
        elif line.startswith("/"):
            dirs.append(line.split("=", 1)[0].rstrip("/") or "/")
    return dirs


MAX_INCLUDE_DEPTH = 8


def _unique(dirs: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(dirs))


def resolve_needed(tree: Tree, name: str, dirs: list[str]) -> str | None:
    """The tree path ``name`` loads from (``None``: not found)."""
    if "/" in name:
        return name if tree.is_file(name) else None
    for folder in dirs:
        candidate = posixpath.join(folder, name)
        if tree.is_file(candidate):
            return candidate
    return None


def libc_of(info: ElfInfo) -> str | None:
    """``glibc`` or ``musl`` when the object's loader or needs say which."""
    interp = info.interp or ""
    if "ld-musl" in interp or any(n in MUSL_SONAMES for n in info.needed):
        return "musl"
    if "ld-linux" in interp or any(n in GLIBC_SONAMES for n in info.needed) or any(
            v.startswith("GLIBC_") for vs in info.version_needs.values() for v in vs):
        return "glibc"
    return None


def _libc_mismatch(path: str, info: ElfInfo, flavor: str, libc: RootLibc) -> Finding:
    if flavor == "glibc":
        libs = [n for n in info.needed if n in GLIBC_SONAMES] or [info.interp or "ld-linux"]
        versions = sorted({v for vs in info.version_needs.values() for v in vs
                           if v.startswith("GLIBC_")}, key=_version_key)
        what = ", ".join(libs[:2] + versions[-1:])
    else:
        what = ", ".join([n for n in info.needed if n in MUSL_SONAMES] or [info.interp or ""])
    name = posixpath.basename(path)
    return Finding(Severity.ERROR, "libc-mismatch", path,
                   f"{name} needs {flavor} ({what}) but this root's libc is {libc.flavor}: "
                   f"it cannot load; use a {flavor}-based root (e.g. --provider "
                   f"{'debootstrap' if flavor == 'glibc' else 'alpine'}) or a {libc.flavor} "
                   "build of it", details={"needs": flavor, "root": libc.flavor})


def _origin(directory: str, origin: str) -> str:
    for token in ("$ORIGIN", "${ORIGIN}"):
        directory = directory.replace(token, origin)
    return posixpath.normpath(directory)


def _version_key(version: str) -> tuple[int, ...]:
    digits = version.rpartition("_")[2].split(".")
    return tuple(int(d) if is_decimal(d) else 0 for d in digits)


def _newest(defined: set[str]) -> str:
    return max(defined, key=_version_key)
