"""Configuring an unpacked tree (maintainer scripts, ``dpkg --configure -a``).

This runs riscv64 code, so it happens where riscv64 code can run:

``first-boot``
    the image's ``/init`` does it on first boot (:mod:`rvforge_debootstrap.firstboot`).
``binfmt``
    a ``chroot`` on this host through a registered ``qemu-riscv64`` binfmt_misc handler:
    not implemented yet (an error says so and names the alternatives).
``vm``
    inside ``qemu-system-riscv64`` through the registered ``qemu-virt`` launcher.
``none``
    unpacked only (mmdebstrap's ``extract``).
``auto``
    ``vm`` when the build writes a disk image and the ``qemu-virt`` launcher is installed
    (launchers boot disk images as snapshots, so a first-boot configuration would run at
    every boot and the audit would see a tree without the links ``update-alternatives``
    makes); ``first-boot`` otherwise.
"""

from __future__ import annotations

from pathlib import Path

from rvforge import BuildContext, ToolMissingError, Tree, UsageError

from rvforge_debootstrap.dpkgdb import Unpacked
from rvforge_debootstrap.firstboot import install_first_boot
from rvforge_debootstrap.vm import LAUNCHER as VM_LAUNCHER
from rvforge_debootstrap.vm import configure_in_vm

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def binfmt_handler(arch: str = "riscv64") -> Path | None:
    """The enabled binfmt_misc entry for ``qemu-<arch>``, if any."""
    entry = BINFMT_DIR / f"qemu-{arch}"
    try:
        return entry if entry.read_text().startswith("enabled") else None
    except OSError:
        return None


def auto_mode(ctx: BuildContext) -> str:
    """What ``--configure auto`` means for this build (see the module docstring)."""
    if ctx.artifact_kind == "disk" and VM_LAUNCHER in ctx.registry.launchers:
        return "vm"
    return "first-boot"


def configure(tree: Tree, packages: list[Unpacked], mode: str, arch: str,
              ctx: BuildContext) -> str:
    """Configure ``tree`` in ``mode``; return the mode used."""
    mode = auto_mode(ctx) if mode == "auto" else mode
    ctx.log.info("configure", mode=mode)
    if mode == "none":
        return mode
    if mode == "binfmt":
        if binfmt_handler(arch) is None:
            raise ToolMissingError(
                f"--configure binfmt: no enabled qemu-{arch} handler in {BINFMT_DIR}; use "
                "--configure vm or first-boot")
        raise UsageError("--configure binfmt is not implemented yet; use --configure vm "
                         "(no root needed) or first-boot")
    install_first_boot(tree, [p.info_name for p in packages], arch)
    if mode == "vm":
        configure_in_vm(tree, ctx)
    return mode
