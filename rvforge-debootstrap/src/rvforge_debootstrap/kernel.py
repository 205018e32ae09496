"""The ``debian`` kernel source: Debian's ``linux-image-riscv64`` from the mirror.

The metapackage names the real image package (``linux-image-6.12.*-riscv64``); that
``.deb`` (~113 MB) is downloaded once, verified, and unpacked once into
``ctx.cache("debian", "kernels", <package>_<version>)``. The kernel is
``boot/vmlinux-<version>`` (a flat Image with an EFI stub that ``-kernel`` takes); the
modules directory holds ``lib/modules/<version>``.

The lookup (the suite's signed Release, which names the index the kernel came from) is
cached with the Release itself: within :data:`RELEASE_RECHECK_SECONDS` (a day, like apt's
lists) of the last check, and always with ``--offline``, the cached Release is verified
again locally and no network is touched; ``refresh`` (``--refresh``) asks the mirror now.
If the lookup fails (no network, a mirror that serves garbage), the newest cached kernel
(one that was verified and unpacked completely) boots, with a warning.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rvforge import BuildContext, InputError, Kernel, KernelSource, UsageError

if TYPE_CHECKING:  # the archive's modules are imported on use: plugin loading stays light
    from rvforge_debootstrap.archive import DebianArchive
    from rvforge_debootstrap.index import Package


@dataclass
class DebianKernelOptions:
    """:param release: suite or codename. :param mirror: mirror URL or path (default: see
    ``rvforge_debootstrap.mirror``). :param package: the image package or metapackage.
    :param keyring: keyring that signs the suite. :param refresh: ask the mirror for the
    newest kernel now, even if the lookup was checked within
    :data:`RELEASE_RECHECK_SECONDS` (``--refresh``)."""

    release: str = "trixie"
    mirror: str | None = None
    package: str = "linux-image-riscv64"
    keyring: Path | None = None
    refresh: bool = False


RELEASE_RECHECK_SECONDS = 24 * 3600.0
"""How long a verified Release stands for the kernel lookup before it is fetched again."""


class DebianKernelSource(KernelSource[DebianKernelOptions]):
    name = "debian"
    summary = "Debian's linux-image-riscv64 from the Debian mirror (downloaded once, cached)"
    Options = DebianKernelOptions
    cache_entries = {"debian/kernels/*": "kernels", "debian/debs/*": "downloads",
                     "debian/dists/*/*": "indexes", "debian/kernel-symbols/*": "kernels"}

    def fetch(self, options: DebianKernelOptions, ctx: BuildContext) -> Kernel:
        try:
            if not ctx.offline and not options.refresh and _recently_checked(ctx, options):
                try:
                    return self._lookup(options, dataclasses.replace(ctx, offline=True))
                except InputError as error:  # the cache lacks a piece: ask the mirror
                    ctx.log.debug("cached kernel lookup incomplete", error=str(error))
            return self._lookup(options, ctx)
        except InputError as error:
            cached = newest_cached_kernel(ctx)
            if cached is None:
                if ctx.offline:
                    raise UsageError(
                        "--offline: no Debian kernel in the cache "
                        f"({ctx.cache_dir / 'debian' / 'kernels'}); run `rvforge boot IMAGE` "
                        "once with the network to download it, or pass --kernel PATH"
                    ) from None
                raise
            if ctx.offline:
                ctx.log.info("offline: the newest cached kernel", kernel=str(cached.image))
            else:
                ctx.log.warning("kernel lookup failed; booting the newest cached kernel",
                                error=str(error), kernel=str(cached.image))
            return cached

    def debug_symbols(self, kernel: Kernel, options: DebianKernelOptions,
                      ctx: BuildContext) -> Path:
        """The ``linux-image-VERSION-dbg`` package's vmlinux (:mod:`.kernel_symbols`)."""
        from rvforge_debootstrap.archive import DebianArchive
        from rvforge_debootstrap.kernel_symbols import kernel_symbols

        return kernel_symbols(kernel, DebianArchive(ctx, options.mirror, options.release,
                                                    "riscv64", options.keyring), ctx)

    def _lookup(self, options: DebianKernelOptions, ctx: BuildContext) -> Kernel:
        from rvforge_debootstrap.archive import DebianArchive

        archive = DebianArchive(ctx, options.mirror, options.release, "riscv64",
                                options.keyring)
        # The unpacked kernel for this index is remembered, so a warm start needs only the
        # (signature-checked) Release, not the 54 MB index.
        index_file = archive.release().file(
            f"main/binary-{archive.arch}/Packages.xz", f"{options.release} index")
        pointer = archive.dists_cache / f"kernel-{index_file.sha256[:16]}-{options.package}"
        if pointer.exists():
            dest = ctx.cache("debian", "kernels") / pointer.read_text().strip()
            if (dest / ".complete").exists():
                return _kernel_in(dest, dest.name)
        image_pkg = _image_package(archive, options.package)
        dest = ctx.cache("debian", "kernels") / image_pkg.deb_name.removesuffix(".deb")
        if not (dest / ".complete").exists():
            deb = archive.download(image_pkg)
            ctx.log.info("unpacking kernel", package=image_pkg.name, version=image_pkg.version)
            _unpack_atomically(deb, dest)
        pointer.write_text(dest.name + "\n")
        return _kernel_in(dest, image_pkg.deb_name)


def newest_cached_kernel(ctx: BuildContext) -> Kernel | None:
    """The most recently unpacked complete kernel in the cache, if any."""
    done = [d / ".complete" for d in ctx.cache("debian", "kernels").iterdir()
            if (d / ".complete").is_file()]
    if not done:
        return None
    newest = max(done, key=lambda marker: marker.stat().st_mtime).parent
    return _kernel_in(newest, newest.name)


def _recently_checked(ctx: BuildContext, options: DebianKernelOptions) -> bool:
    """Whether the suite's Release was fetched and verified a short while ago."""
    from rvforge_debootstrap.archive import DebianArchive

    archive = DebianArchive(ctx, options.mirror, options.release, "riscv64", options.keyring)
    try:
        age = time.time() - (archive.dists_cache / "InRelease").stat().st_mtime
    except FileNotFoundError:
        return False
    return 0 <= age < RELEASE_RECHECK_SECONDS


def _image_package(archive: DebianArchive, name: str) -> Package:
    """Follow a metapackage (whose first dependency is another ``linux-image-*``) to the
    real image package."""
    pkg = archive.package(name)
    for _ in range(3):
        first = pkg.depends[0][0] if pkg.depends else None
        if first is None or not first.name.startswith("linux-image-"):
            break
        pkg = archive.package(first.name)
    return pkg


def _unpack_atomically(deb: Path, dest: Path) -> None:
    temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    from rvforge_debootstrap.deb import extract_deb_to_dir

    try:
        extract_deb_to_dir(deb, temp)
        (temp / ".complete").write_text(deb.name + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(temp, dest)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _kernel_in(dest: Path, label: str) -> Kernel:
    images = sorted((dest / "boot").glob("vmlinux-*")) + sorted((dest / "boot").glob("vmlinuz-*"))
    if not images:
        raise InputError(f"{label}: has no boot/vmlinux-* image; pass a kernel image "
                         "package as the package option")
    image = images[0]
    version = image.name.split("-", 1)[1]
    modules = None
    for base in (dest, dest / "usr"):
        if (base / "lib" / "modules" / version).is_dir():
            modules = base
            break
    return Kernel(image=image, version=version, modules=modules)
