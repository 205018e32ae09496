"""The ``debian`` kernel source: Debian's ``linux-image-riscv64`` from the mirror.

The metapackage names the real image package (``linux-image-6.12.*-riscv64``); that
``.deb`` (~113 MB) is downloaded once, verified, and unpacked once into
``ctx.cache("debian", "kernels", <package>_<version>)``. The kernel is
``boot/vmlinux-<version>`` (a flat Image with an EFI stub that ``-kernel`` takes); the
modules directory holds ``lib/modules/<version>``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rvforge import BuildContext, InputError, Kernel, KernelSource

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.deb import extract_deb_to_dir
from rvforge_debootstrap.index import Package


@dataclass
class DebianKernelOptions:
    """:param release: suite or codename. :param mirror: mirror URL or path (default: see
    ``rvforge_debootstrap.mirror``). :param package: the image package or metapackage.
    :param keyring: keyring that signs the suite."""

    release: str = "trixie"
    mirror: str | None = None
    package: str = "linux-image-riscv64"
    keyring: Path | None = None


class DebianKernelSource(KernelSource[DebianKernelOptions]):
    name = "debian"
    summary = "Debian's linux-image-riscv64 from the Debian mirror (downloaded once, cached)"
    Options = DebianKernelOptions
    cache_entries = {"debian/kernels/*": "kernels", "debian/debs/*": "downloads",
                     "debian/dists/*/*": "indexes"}

    def fetch(self, options: DebianKernelOptions, ctx: BuildContext) -> Kernel:
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
