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
    it).
``vm``
    at build time, inside ``qemu-system-riscv64`` through the registered ``qemu-virt``
    launcher (:mod:`rvforge_debootstrap.vm`): no root, no binfmt, slower.
``none``
    unpacked only (mmdebstrap's ``extract``).
``auto``
    configured once, at build time, whatever the output: ``binfmt`` when everything it
    needs is there (root, the tools, an enabled riscv64 handler whose interpreter works
    in a chroot), else ``vm`` when rvforge-qemu is installed, else ``first-boot`` with a
    warning that the image will configure itself at every boot. The log says which and
    why.
"""

from __future__ import annotations

from pathlib import Path

from rvforge import BuildContext, RvforgeError, Tree

from rvforge_debootstrap import binfmt, vm
from rvforge_debootstrap.dpkgdb import Unpacked
from rvforge_debootstrap.firstboot import install_first_boot


def auto_mode(ctx: BuildContext, arch: str, binfmt_dir: Path = binfmt.BINFMT_DIR) -> str:
    """What ``--configure auto`` means for this build on this host (see the module
    docstring); ``binfmt_dir`` is where binfmt_misc is mounted."""
    try:
        binfmt.preflight(arch, binfmt_dir)
    except RvforgeError as why:
        ctx.log.debug("--configure auto: not binfmt", reason=str(why))
    else:
        ctx.log.info("--configure auto: binfmt (root and a riscv64 binfmt_misc handler)")
        return "binfmt"
    if vm.available(ctx):
        ctx.log.info("--configure auto: vm (no usable binfmt handler; -v says why)")
        return "vm"
    ctx.log.warning("--configure auto: first-boot, so the image configures itself at every "
                    "boot (about a minute under TCG): install rvforge-qemu to configure it "
                    "once at build time, or use --configure binfmt as root")
    return "first-boot"


def preflight(mode: str, arch: str, ctx: BuildContext) -> str:
    """Check what ``mode`` needs on this host, with a one-line error naming the fix, so a
    provider can fail before it downloads anything (:func:`configure` checks again);
    return the mode, ``auto`` resolved."""
    mode = auto_mode(ctx, arch) if mode == "auto" else mode
    if mode == "binfmt":
        binfmt.preflight(arch)
    elif mode == "vm":
        vm.preflight(ctx)
    return mode


def configure(tree: Tree, packages: list[Unpacked], mode: str, arch: str,
              ctx: BuildContext, *, machine: str | None = None) -> str:
    """Configure ``tree`` in ``mode`` (better resolved by :func:`preflight` already), a
    ``vm`` on ``machine`` (default: ``qemu-virt``); return the mode used."""
    mode = auto_mode(ctx, arch) if mode == "auto" else mode
    ctx.log.info("configure", mode=mode)
    if mode == "none":
        return mode
    handlers = binfmt.preflight(arch) if mode == "binfmt" else []  # before the tree changes
    install_first_boot(tree, [p.info_name for p in packages], arch)
    if mode == "vm":
        vm.configure_in_vm(tree, ctx, len(packages), machine_name=machine or vm.MACHINE)
    elif mode == "binfmt":
        binfmt.configure_in_chroot(tree, handlers, len(packages), ctx)
    return mode
