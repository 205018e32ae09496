"""Which file gdb gets for the kernel (``--gdb-symbols``): a kernel build's ELF vmlinux is
its own symbols; a flat image given by path (Debian's ``boot/vmlinux-*`` is a PE32+ file
with an EFI stub) has none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rvforge import BuildContext

from rvforge_qemu.kernels import kernel_from_path, kernel_symbols


def test_an_elf_kernel_is_its_own_symbols(ctx: BuildContext,
                                          riscv_cc: Callable[..., Path]) -> None:
    elf = riscv_cc("int main(void) { return 0; }\n", "vmlinux-elf", "-g", "-static")
    assert kernel_symbols(str(elf), kernel_from_path(elf), ctx) == elf.resolve()


def test_a_flat_image_by_path_has_none(ctx: BuildContext, tmp_path: Path) -> None:
    image = tmp_path / "boot" / "vmlinux-6.12.0-riscv64"
    image.parent.mkdir()
    image.write_bytes(b"MZ" + bytes(62) + b"RISCV\0\0\0" + bytes(64))  # EFI stub's header
    assert kernel_symbols(str(image), kernel_from_path(image), ctx) is None
