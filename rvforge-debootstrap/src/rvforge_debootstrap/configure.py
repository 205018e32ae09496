"""Configuring an unpacked tree (maintainer scripts, ``dpkg --configure -a``).

This runs riscv64 code, so it happens where riscv64 code can run:

``first-boot``
    the image's ``/init`` does it on first boot (:mod:`rvforge_debootstrap.firstboot`).
``binfmt``
    a ``chroot`` on this host through a registered ``qemu-riscv64`` binfmt_misc handler
    (needs root and the handler).
``vm``
    inside ``qemu-system-riscv64`` through the registered ``qemu-virt`` launcher.
``none``
    unpacked only (mmdebstrap's ``extract``).
``auto``
    ``binfmt`` when a handler is registered and rvforge runs as root, else ``first-boot``.
"""

from __future__ import annotations

import os
from pathlib import Path

from rvforge import BuildContext, ToolMissingError, Tree

from rvforge_debootstrap.dpkgdb import Unpacked
from rvforge_debootstrap.firstboot import install_first_boot

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def binfmt_handler(arch: str = "riscv64") -> Path | None:
    """The enabled binfmt_misc entry for ``qemu-<arch>``, if any."""
    entry = BINFMT_DIR / f"qemu-{arch}"
    try:
        return entry if entry.read_text().startswith("enabled") else None
    except OSError:
        return None


def choose_mode(mode: str, arch: str) -> str:
    """Resolve ``auto`` to a concrete mode."""
    if mode != "auto":
        return mode
    if binfmt_handler(arch) is not None and os.geteuid() == 0:
        return "binfmt"
    return "first-boot"


def configure(tree: Tree, packages: list[Unpacked], mode: str, arch: str,
              ctx: BuildContext) -> str:
    """Configure ``tree`` in ``mode``; return the mode used."""
    mode = choose_mode(mode, arch)
    ctx.log.info("configure", mode=mode)
    if mode == "none":
        return mode
    install_first_boot(tree, [p.info_name for p in packages], arch)
    if mode == "first-boot":
        return mode
    if mode == "binfmt":
        from rvforge_debootstrap.chroot import configure_in_chroot

        if binfmt_handler(arch) is None:
            raise ToolMissingError(
                f"--configure binfmt: no enabled qemu-{arch} handler in {BINFMT_DIR}; "
                "install qemu-user-binfmt (needs root), or use --configure vm or first-boot")
        configure_in_chroot(tree, ctx)
        return mode
    from rvforge_debootstrap.vm import configure_in_vm

    configure_in_vm(tree, ctx)
    return mode
