"""Debug symbols for Debian's riscv64 kernel: the ``vmlinux`` ELF that gdb reads.

Debian's ``boot/vmlinux-VERSION`` is a flat Image with an EFI stub (a PE32+ file), which gdb
refuses ("not in executable format"). The matching ``linux-image-VERSION-dbg`` package holds
``usr/lib/debug/boot/vmlinux-VERSION``, the ELF with symbols; it is large (about 1 GB to
download, 9 GB unpacked, nearly all of it the modules' symbols), so it is fetched only on
request (``--gdb-symbols``) and its size is said first. The ``.deb`` is verified against the
signed index like the kernel's; only the ``vmlinux`` is kept, in
``ctx.cache("debian", "kernel-symbols", <package>_<version>)``, and the ``.deb`` is deleted
once it is extracted.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from rvforge import BuildContext, InputError, Kernel, UsageError, normalize
from rvforge.riscv.elf import EM_RISCV

from rvforge_debootstrap.archive import DebianArchive, UnknownPackageError
from rvforge_debootstrap.deb import open_tar

__all__ = ["debug_package_name", "extract_vmlinux", "kernel_symbols", "symbols_path"]

BLOCK = 1 << 20


def debug_package_name(kernel: Kernel) -> str:
    """``linux-image-VERSION-dbg``: the package with ``kernel``'s symbols."""
    return f"linux-image-{kernel.version}-dbg"


def symbols_path(kernel: Kernel, ctx: BuildContext) -> Path:
    """Where the symbols of ``kernel`` (unpacked from the Debian cache) are kept."""
    package_version = kernel.image.parent.parent.name.split("_")[1:2]
    if not package_version or not kernel.version:
        raise UsageError(f"{kernel.image}: not a kernel unpacked from a Debian package; give "
                         "gdb your own kernel build's vmlinux")
    return (ctx.cache("debian", "kernel-symbols")
            / f"{debug_package_name(kernel)}_{package_version[0]}"
            / f"vmlinux-{kernel.version}")


def kernel_symbols(kernel: Kernel, archive: DebianArchive, ctx: BuildContext) -> Path:
    """The ``vmlinux`` with symbols of the Debian kernel ``kernel``, from the cache or
    downloaded (see the module docstring).

    :raises UsageError: no such package in the index, a different version there, or
        ``--offline`` with nothing cached.
    """
    dest = symbols_path(kernel, ctx)
    if dest.is_file():
        return dest
    name, version = debug_package_name(kernel), dest.parent.name.split("_")[1]
    if ctx.offline:
        raise UsageError(f"{ctx.flag('offline')}: the symbols of kernel {kernel.version} are "
                         "not in the "
                         f"cache ({dest.parent}); run once with the network to download "
                         f"{name}")
    try:
        package = archive.package(name)
    except UnknownPackageError:
        raise UsageError(f"{archive.where} has no {name}: there are no debug symbols for "
                         f"kernel {kernel.version} on {archive.mirror}") from None
    if package.version != version:
        raise UsageError(f"{archive.where} has {name} {package.version}, not {version} (the "
                         "booted kernel's): update the kernel (boot once with the network) "
                         "so its symbols match")
    ctx.log.warning("downloading the kernel's debug symbols (once; only vmlinux is kept)",
                    package=package.deb_name, size=f"{package.deb_size / (1 << 20):.0f} MiB")
    deb = archive.download(package)
    try:
        extract_vmlinux(deb, kernel.version, dest)
    finally:
        deb.unlink(missing_ok=True)
    return dest


def extract_vmlinux(deb: Path, version: str, dest: Path) -> Path:
    """Write the ``vmlinux-VERSION`` of the ``-dbg`` package ``deb`` to ``dest`` (through a
    temporary name, so a partial file is never left there); stop reading at it.

    :raises InputError: the package has no such member, or it is not a RISC-V ELF.
    """
    wanted = {f"/usr/lib/debug/boot/vmlinux-{version}",
              f"/usr/lib/debug/lib/modules/{version}/vmlinux"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open_tar(deb, "data.tar") as archive:
        for member in archive:
            if not member.isreg() or normalize(member.name, member=deb.name) not in wanted:
                continue
            source = archive.extractfile(member)
            assert source is not None  # a regular member always has a file object
            fd, temp = tempfile.mkstemp(prefix=f".{dest.name}-", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    head = source.read(BLOCK)
                    _check_elf(head, f"{deb.name}: {member.name}")
                    while head:
                        out.write(head)
                        head = source.read(BLOCK)
                os.chmod(temp, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
                os.replace(temp, dest)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
            return dest
    raise InputError(f"{deb.name}: has no usr/lib/debug/boot/vmlinux-{version}; it is not "
                     f"the debug package of kernel {version}")


def _check_elf(head: bytes, label: str) -> None:
    if head[:4] != b"\x7fELF" or len(head) < 20 or \
            int.from_bytes(head[18:20], "little") != EM_RISCV:
        raise InputError(f"{label}: not a RISC-V ELF file; the package is not what its name "
                         "says")
