"""A Debian archive (mirror + suite + architecture): signed index, verified downloads.

The stable API other plugins and tests use::

    from rvforge_debootstrap.archive import DebianArchive, extract_deb, extract_deb_to_dir

    archive = DebianArchive(ctx, mirror=None, suite="trixie", arch="riscv64", keyring=None)
    archive.release()                 # verified Release (gpgv + keyring); .codename, .version
    archive.index()                   # PackageIndex of main/binary-ARCH (SHA-256 checked)
    path = archive.download("libc6")  # verified .deb in ctx.cache("debian", "debs")
    paths = archive.download_many([...])   # the same, in parallel, with progress
    unpacked = archive.unpacked(pkg)  # unpacked once into ctx.cache("debian", "unpacked-2")
    extract_deb(path, tree, scratch)  # data.tar members into a Tree (owners, modes kept)
    extract_deb_to_dir(path, dest)    # data.tar members into a host directory

``mirror=None`` takes ``$RVFORGE_DEBIAN_MIRROR``, else the Debian mirror of the host's apt
sources (:mod:`rvforge_debootstrap.mirror`). ``keyring=None`` is
``/usr/share/keyrings/debian-archive-keyring.gpg``. Every file is verified before use:
``InRelease`` by its signature, ``Packages.xz`` against the Release's SHA-256, each
``.deb`` against the index's SHA-256; a mismatch raises
:class:`rvforge.ChecksumMismatchError` and keeps nothing. Offline (``ctx.offline``), the
last verified ``InRelease`` and index in the cache are used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import lzma
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rvforge import BuildContext, InputError, Progress, UsageError
from rvforge.net.download import fetch, fetch_bytes, join_url, write_atomic
from rvforge.numbers import is_decimal

from rvforge_debootstrap.deb import (
    MANIFEST,
    UNPACKED_FORMAT,
    UnpackedDeb,
    extract_deb,
    extract_deb_to_dir,
    read_control,
    unpack_deb,
)
from rvforge_debootstrap.distribution import DEBIAN, Distribution
from rvforge_debootstrap.index import Package, PackageIndex
from rvforge_debootstrap.mirror import choose_mirror
from rvforge_debootstrap.release import Release, parse_release, verify_inrelease
from rvforge_debootstrap.resolve import UnknownPackageError, unknown_package

__all__ = [
    "DebianArchive", "UnknownPackageError", "UnpackedDeb", "extract_deb", "extract_deb_to_dir",
    "read_control",
]

COMPONENT = "main"
VERIFIED = "InRelease.verified"
"""Beside the cached InRelease: the text gpgv last verified, and the digests it was for."""
OLD_UNPACKED = ("unpacked",)
"""Directories under ``<cache>/debian`` of earlier unpacked layouts (1: a file per member)."""
DOWNLOAD_THREADS = 6
_SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")
_POOL_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~%:-]*(/[A-Za-z0-9_][A-Za-z0-9._+~%:-]*)+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DebianArchive:
    """One suite and architecture of a Debian mirror.

    :param ctx: the build context (cache, log, progress, offline flag).
    :param mirror: URL or local path of the mirror (``None``: see :func:`choose_mirror`).
    :param suite: codename or suite (``trixie``, ``stable``, ``sid``...).
    :param arch: Debian architecture name.
    :param keyring: OpenPGP keyring that signs the suite (default: the distribution's).
    :param dist: the distribution (:mod:`rvforge_debootstrap.distribution`): its default
        mirror and keyring, and the components whose indexes are read (Ubuntu: ``main``
        and ``universe``).
    """

    def __init__(self, ctx: BuildContext, mirror: str | None = None, suite: str = "trixie",
                 arch: str = "riscv64", keyring: Path | None = None,
                 dist: Distribution = DEBIAN) -> None:
        self.ctx = ctx
        self.dist = dist
        self.mirror = choose_mirror(mirror, dist=dist)
        for option, value in (("--release", suite), ("architecture", arch)):
            if not _SUITE.match(value):
                raise UsageError(f"{option} {value!r}: not a Debian suite or architecture "
                                 "name (letters, digits, '.', '+', '-', '_')")
        self.suite = suite
        self.arch = arch
        self.keyring = Path(keyring) if keyring else dist.keyring
        self.keyring_named = bool(keyring)
        self._release: Release | None = None
        self._index: PackageIndex | None = None

    # -- metadata ------------------------------------------------------------------------

    @property
    def dists_cache(self) -> Path:
        """Where this mirror's verified ``InRelease`` and indexes are cached."""
        return self.ctx.cache("debian", "dists", _mirror_key(self.mirror), self.suite)

    def release(self) -> Release:
        """The suite's Release, fetched and signature-checked (cached offline)."""
        if self._release is None:
            cached = self.dists_cache / "InRelease"
            label = f"{self.suite} InRelease"
            url = join_url(self.mirror, "dists", self.suite, "InRelease")
            if self.ctx.offline and cached.exists():
                data = cached.read_bytes()
            else:
                data = fetch_bytes(url, self.ctx, label=label)
            release = parse_release(verify_inrelease(data, self.keyring, f"{label} ({url})",
                                                     self.dist.keyring_package,
                                                     named=self.keyring_named,
                                                     memo=self.dists_cache / VERIFIED),
                                    f"{label} ({url})")
            if self.suite not in (release.suite, release.codename):
                raise InputError(f"{url}: signed for suite {release.suite!r} (codename "
                                 f"{release.codename!r}), not {self.suite!r}; the mirror "
                                 "serves the wrong file")
            if self.arch not in release.architectures:
                raise UsageError(f"{self.suite} has no {self.arch} packages (it has: "
                                 f"{', '.join(release.architectures)})")
            if not self.ctx.offline:
                write_atomic(cached, data, within=self.ctx.cache_dir)
            self._release = release
            self.ctx.log.info("release verified", suite=release.suite,
                              codename=release.codename, version=release.version,
                              keyring=str(self.keyring))
        return self._release

    def packages_file(self, component: str = COMPONENT) -> Path:
        """The suite's ``COMPONENT/binary-ARCH/Packages.xz``, verified against the Release."""
        release = self.release()
        rel_path = f"{component}/binary-{self.arch}/Packages.xz"
        entry = release.file(rel_path, f"{self.suite} {rel_path}")
        by_hash = f"{component}/binary-{self.arch}/by-hash/SHA256/{entry.sha256}"
        url = join_url(self.mirror, "dists", self.suite,
                       by_hash if release.acquire_by_hash else rel_path)
        dest = self.dists_cache / f"Packages-{self.arch}-{entry.sha256[:16]}.xz"
        return fetch(url, dest, self.ctx, digests={"sha256": entry.sha256}, size=entry.size,
                     label=f"{self.suite}/{rel_path}")

    def index_digests(self) -> list[str]:
        """The SHA-256 of each component's signed index, in order (a cache key)."""
        return [self.release().file(f"{c}/binary-{self.arch}/Packages.xz", self.where).sha256
                for c in self.dist.components]

    def index(self) -> PackageIndex:
        """The parsed index of the distribution's components for the architecture (and
        ``all``); where two list a name, the higher version wins."""
        if self._index is None:
            texts = []
            for component in self.dist.components:
                path = self.packages_file(component)
                texts.append(_inflate_index(path).rstrip(b"\n"))
            self._index = PackageIndex(b"\n\n".join(texts) + b"\n", self.arch)
            self.ctx.log.info("index loaded", suite=self.suite, arch=self.arch,
                              packages=len(self._index))
        return self._index

    def package(self, name: str) -> Package:
        """The index entry of ``name``.

        :raises UnknownPackageError: (exit 2) naming the package and close matches.
        """
        found = self.index().get(name)
        if found is None:
            raise unknown_package(self.index(), name, self.where)
        return found

    @property
    def where(self) -> str:
        """Names the index in messages: ``trixie main/riscv64``."""
        return f"{self.suite} {' '.join(self.dist.components)}/{self.arch}"

    # -- packages ------------------------------------------------------------------------

    @property
    def deb_cache(self) -> Path:
        return self.ctx.cache("debian", "debs")

    def download(self, package: str | Package, *, ctx: BuildContext | None = None) -> Path:
        """The verified ``.deb`` of ``package`` (a name or an index entry), from the cache or
        the mirror."""
        pkg = self.package(package) if isinstance(package, str) else package
        if not pkg.filename or not pkg.sha256:
            raise InputError(f"{pkg.name}: the index gives no Filename/SHA256 for it")
        self._check_entry(pkg)
        return fetch(join_url(self.mirror, pkg.filename), self.deb_cache / pkg.deb_name,
                     ctx or self.ctx, digests={"sha256": pkg.sha256}, size=pkg.deb_size,
                     label=pkg.deb_name)

    def download_many(self, packages: Iterable[str | Package], *,
                      threads: int = DOWNLOAD_THREADS) -> dict[str, Path]:
        """Download several packages in parallel; return name → ``.deb`` path.

        One progress bar counts the bytes of the whole set. The first failure is raised
        after the running downloads finish; what was verified stays cached.
        """
        pkgs = [self.package(p) if isinstance(p, str) else p for p in packages]
        total = sum(p.deb_size for p in pkgs)
        quiet = dataclasses.replace(self.ctx, progress=Progress(enabled=False))
        with self.ctx.progress.task(f"download {len(pkgs)} packages", total=total,
                                    bytes=True) as task:
            def one(pkg: Package) -> Path:
                path = self.download(pkg, ctx=quiet)
                task.advance(pkg.deb_size)
                return path

            with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
                results = list(pool.map(one, pkgs))
        return {p.name: path for p, path in zip(pkgs, results)}

    # -- unpacked cache ------------------------------------------------------------------

    def _check_entry(self, pkg: Package) -> None:
        """Refuse an index entry whose Filename (a pool path), SHA256 or Size is not of
        its format: they become a URL, a cache directory and a download bound."""
        where = f"{self.where} index of {self.mirror}"
        if not (_POOL_PATH.match(pkg.filename) and ".." not in pkg.filename.split("/")):
            raise InputError(f"{where}: {pkg.name}'s Filename {pkg.filename!r} is not a pool "
                             "path (relative, no '..'); refusing it")
        if not _SHA256.match(pkg.sha256):
            raise InputError(f"{where}: {pkg.name}'s SHA256 {pkg.sha256!r} is not 64 hex "
                             "digits; refusing it")
        if not is_decimal(pkg.size, max_digits=15):
            raise InputError(f"{where}: {pkg.name}'s Size {pkg.size!r} is not a number")

    def unpacked_dir(self, package: Package) -> Path:
        """Where ``package`` is (or will be) unpacked: keyed by its verified SHA-256 and the
        layout version."""
        self._check_entry(package)
        return self.ctx.cache("debian", f"unpacked-{UNPACKED_FORMAT}") / package.sha256

    def prune_old_layouts(self) -> None:
        """Remove unpacked caches of earlier layouts (:data:`OLD_UNPACKED`): nothing reads
        them any more, and a PyTorch-sized one holds gigabytes."""
        for name in OLD_UNPACKED:
            old = self.ctx.cache_dir / "debian" / name
            if old.is_dir():
                self.ctx.log.info("removing an unpacked cache of an older layout",
                                  path=str(old))
                shutil.rmtree(old, ignore_errors=True)

    def unpacked(self, package: Package, *, ctx: BuildContext | None = None) -> UnpackedDeb:
        """``package`` unpacked once into :meth:`unpacked_dir` (its ``.deb`` downloaded and
        verified first); later calls read the manifest only.

        The directory is renamed into place complete, so a partial unpack is never used.
        """
        dest = self.unpacked_dir(package)
        if (dest / MANIFEST).exists():
            return UnpackedDeb.load(dest)
        deb = self.download(package, ctx=ctx)
        temp = Path(tempfile.mkdtemp(prefix=f".{package.name}-", dir=dest.parent))
        try:
            shutil.rmtree(temp)
            unpack_deb(deb, temp)
            try:
                os.rename(temp, dest)
            except OSError:  # another build unpacked it meanwhile
                if not (dest / MANIFEST).exists():
                    raise
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return UnpackedDeb.load(dest)

    def unpack_many(self, packages: list[Package], *, threads: int = DOWNLOAD_THREADS
                    ) -> list[UnpackedDeb]:
        """:meth:`unpacked` for each package, in parallel (downloads overlap with
        decompression, which releases the GIL); results in the order given."""
        self.prune_old_layouts()
        todo = [p for p in packages if not (self.unpacked_dir(p) / MANIFEST).exists()]
        total = sum(p.deb_size for p in todo)
        if todo:
            self.ctx.log.info("fetching and unpacking", packages=len(todo), bytes=total)
        quiet = dataclasses.replace(self.ctx, progress=Progress(enabled=False))
        with self.ctx.progress.task(f"fetch and unpack {len(packages)} packages",
                                    total=len(packages)) as task:
            def one(pkg: Package) -> UnpackedDeb:
                result = self.unpacked(pkg, ctx=quiet)
                task.advance()
                return result

            with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
                return list(pool.map(one, packages))


def _mirror_key(mirror: str) -> str:
    """A directory name for a mirror URL: readable part plus a short hash."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", mirror.split("://", 1)[-1]).strip("_")[:60]
    return f"{readable}-{hashlib.sha256(mirror.encode()).hexdigest()[:8]}"


MAX_INDEX = 1 << 30
"""Bytes a ``Packages.xz`` may inflate to (trixie's riscv64 index is ~54 MB)."""


def _inflate_index(path: Path) -> bytes:
    """``path`` (a verified ``Packages.xz``) decompressed, at most :data:`MAX_INDEX` bytes:
    a small file that inflates to gigabytes is refused, not held in memory."""
    decompressor = lzma.LZMADecompressor()
    try:
        data = decompressor.decompress(path.read_bytes(), max_length=MAX_INDEX + 1)
    except lzma.LZMAError as error:
        raise InputError(f"{path}: corrupt Packages.xz ({error})") from None
    if len(data) > MAX_INDEX:
        raise InputError(f"{path}: the Packages.xz inflates to more than {MAX_INDEX} bytes; "
                         "refusing it")
    if not decompressor.eof:
        raise InputError(f"{path}: corrupt Packages.xz (it ends before its end marker)")
    return data
