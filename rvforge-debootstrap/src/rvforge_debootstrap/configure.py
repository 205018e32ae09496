"""Configuring an unpacked tree (maintainer scripts, ``dpkg --configure -a``).

This runs riscv64 code, so it happens where riscv64 code can run. Every mode but ``none``
adds the same hook (:mod:`rvforge_debootstrap.firstboot`: each package's ``preinst`` in
dependency order, then ``dpkg --configure -a``); they differ in where it runs:

``first-boot``
    the image's ``/init`` runs it at boot. Images are never written back, so an image
    built this way configures itself at every boot (about 65 s for minbase under TCG).
``binfmt``
    at build time, in a ``chroot`` on this host whose riscv64 programs a registered
    binfmt_misc handler runs through qemu-user (:mod:`rvforge_debootstrap.binfmt`). The
    fastest (minbase: about 20 s configuring, against about 60 s in a VM); it needs root and a
    handler (qemu-user-static's, with the ``F`` flag: docs/debian.md says how to register
    it). A good choice for CI and build machines where you are root anyway.
``vm``
    at build time, inside ``qemu-system-riscv64`` through the registered ``qemu-virt``
    launcher (:mod:`rvforge_debootstrap.vm`): no root, no binfmt, slower.
``none``
    unpacked only (mmdebstrap's ``extract``).
``auto``
    ``vm`` when the build writes a disk image and the ``qemu-virt`` launcher is installed
    (launchers boot disk images as snapshots, so a first-boot configuration would run at
    every boot and the audit would see a tree without the links ``update-alternatives``
    makes); ``first-boot`` otherwise. It never picks ``binfmt``: that would make the result
    depend on the build host's root and binfmt_misc state; ask for it.
"""

from __future__ import annotations

from rvforge import BuildContext, Tree

from rvforge_debootstrap import binfmt, vm
from rvforge_debootstrap.dpkgdb import Unpacked
from rvforge_debootstrap.firstboot import install_first_boot


def auto_mode(ctx: BuildContext) -> str:
    """What ``--configure auto`` means for this build (see the module docstring)."""
    if ctx.artifact_kind == "disk" and vm.LAUNCHER in ctx.registry.launchers:
        return "vm"
    return "first-boot"


def preflight(mode: str, arch: str, ctx: BuildContext) -> None:
    """Check what ``mode`` needs on this host, with a one-line error naming the fix, so a
    provider can fail before it downloads anything (:func:`configure` checks again)."""
    mode = auto_mode(ctx) if mode == "auto" else mode
    if mode == "binfmt":
        binfmt.preflight(arch)
    elif mode == "vm":
        vm.preflight(ctx)


def configure(tree: Tree, packages: list[Unpacked], mode: str, arch: str,
              ctx: BuildContext) -> str:
    """Configure ``tree`` in ``mode``; return the mode used."""
    mode = auto_mode(ctx) if mode == "auto" else mode
    ctx.log.info("configure", mode=mode)
    if mode == "none":
        return mode
    handlers = binfmt.preflight(arch) if mode == "binfmt" else []  # before the tree changes
    install_first_boot(tree, [p.info_name for p in packages], arch)
    if mode == "vm":
        vm.configure_in_vm(tree, ctx)
    elif mode == "binfmt":
        binfmt.configure_in_chroot(tree, handlers, len(packages), ctx)
    return mode
