"""Debug symbols for Debian's kernel (``--gdb-symbols``): the vmlinux taken out of a real
``.deb`` built by ``dpkg-deb`` around a real riscv64 ELF, and the lookup of the matching
``linux-image-VERSION-dbg`` in trixie's real signed index (no 1 GB download here: the
download is the kernel's own verified path, ``DebianArchive.download``)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rvforge import BuildContext, InputError, Kernel, UsageError

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.kernel_symbols import (
    debug_package_name,
    extract_vmlinux,
    kernel_symbols,
    symbols_path,
)

VERSION = "6.12.99+deb13-riscv64"
network = pytest.mark.network


def dbg_deb(tmp_path: Path, files: dict[str, Path]) -> Path:
    root = tmp_path / "pkg"
    shutil.rmtree(root, ignore_errors=True)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: linux-image-{VERSION}-dbg\nVersion: 6.12.99-1\nArchitecture: riscv64\n"
        "Maintainer: rvforge tests <tests@invalid>\nDescription: debug symbols (test)\n")
    for path, source in files.items():
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    deb = tmp_path / f"linux-image-{VERSION}-dbg_6.12.99-1_riscv64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, deb],
                   check=True, capture_output=True)
    return deb


def debian_kernel(ctx: BuildContext, package: str, package_version: str, version: str
                  ) -> Kernel:
    """A kernel as the ``debian`` source lays it out in the cache (the image unread)."""
    image = (ctx.cache("debian", "kernels") / f"{package}_{package_version}_riscv64"
             / "boot" / f"vmlinux-{version}")
    return Kernel(image=image, version=version)


@pytest.fixture
def elf(riscv_cc: Callable[..., Path]) -> Path:
    return riscv_cc("int main(void) { return 0; }\n", "fake-vmlinux", "-g", "-static")


def test_the_vmlinux_is_taken_out_of_the_dbg_package_whole(elf: Path, tmp_path: Path
                                                           ) -> None:
    deb = dbg_deb(tmp_path, {f"usr/lib/debug/boot/vmlinux-{VERSION}": elf,
                             "usr/lib/debug/lib/modules/x/kernel/a.ko": elf})
    dest = tmp_path / "out" / f"vmlinux-{VERSION}"
    assert extract_vmlinux(deb, VERSION, dest) == dest
    assert dest.read_bytes() == elf.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temporary left


def test_a_dbg_package_without_that_kernel_leaves_nothing(elf: Path, tmp_path: Path) -> None:
    deb = dbg_deb(tmp_path, {"usr/lib/debug/boot/vmlinux-6.1.0-riscv64": elf})
    dest = tmp_path / "out" / f"vmlinux-{VERSION}"
    with pytest.raises(InputError, match=re.escape(f"has no usr/lib/debug/boot/vmlinux-{VERSION}")):
        extract_vmlinux(deb, VERSION, dest)
    assert not dest.exists()


def test_a_vmlinux_that_is_not_riscv_is_refused(tmp_path: Path) -> None:
    host = Path(shutil.which("true") or "/bin/true").resolve()
    deb = dbg_deb(tmp_path, {f"usr/lib/debug/boot/vmlinux-{VERSION}": host})
    dest = tmp_path / "out" / f"vmlinux-{VERSION}"
    with pytest.raises(InputError, match="not a RISC-V ELF file"):
        extract_vmlinux(deb, VERSION, dest)
    assert list(dest.parent.iterdir()) == []


def test_cached_symbols_are_used_offline_without_the_index(ctx: BuildContext,
                                                           elf: Path) -> None:
    kernel = debian_kernel(ctx, "linux-image-9.9.9-riscv64", "9.9.9-1", "9.9.9-riscv64")
    cached = symbols_path(kernel, ctx)
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(elf, cached)
    offline = dataclasses.replace(ctx, offline=True)
    try:
        assert kernel_symbols(kernel, DebianArchive(offline), offline) == cached
    finally:
        shutil.rmtree(cached.parent)
    with pytest.raises(UsageError, match="--offline: the symbols of kernel 9.9.9-riscv64 "
                                         "are not in the cache"):
        kernel_symbols(kernel, DebianArchive(offline), offline)


def test_a_kernel_not_from_a_debian_package_has_no_symbols(ctx: BuildContext,
                                                           tmp_path: Path) -> None:
    kernel = Kernel(image=tmp_path / "Image", version="")
    with pytest.raises(UsageError, match="not a kernel unpacked from a Debian package"):
        symbols_path(kernel, ctx)


@network
def test_a_kernel_the_index_has_no_dbg_package_for_says_there_are_none(
        ctx: BuildContext) -> None:
    kernel = debian_kernel(ctx, "linux-image-9.9.9-riscv64", "9.9.9-1", "9.9.9-riscv64")
    with pytest.raises(UsageError) as raised:
        kernel_symbols(kernel, DebianArchive(ctx), ctx)
    assert str(raised.value) == (
        "trixie main/riscv64 has no linux-image-9.9.9-riscv64-dbg: there are no debug symbols "
        f"for kernel 9.9.9-riscv64 on {DebianArchive(ctx).mirror}")


@network
def test_the_index_s_dbg_package_matches_the_kernel_or_is_refused(
        ctx: BuildContext) -> None:
    archive = DebianArchive(ctx)
    image = archive.package(archive.package("linux-image-riscv64").depends[0][0].name)
    version = image.name.removeprefix("linux-image-")
    kernel = debian_kernel(ctx, image.name, image.version, version)
    dbg = archive.package(debug_package_name(kernel))
    assert dbg.version == image.version
    assert dbg.deb_size > 500 << 20  # why it is fetched only on request
    stale = debian_kernel(ctx, image.name, "0~old", version)
    with pytest.raises(UsageError, match=re.escape(f"has {dbg.name} {dbg.version}, not 0~old")):
        kernel_symbols(stale, archive, ctx)
