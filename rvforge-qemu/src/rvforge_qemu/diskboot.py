"""The boot initramfs for disk images: the kernel's own block and filesystem modules and
:mod:`rvforge_qemu.stub` as ``/init``, which mounts ``/dev/vda`` and runs rvforge's init
script there.

Modules come from the kernel's ``lib/modules/<version>`` in dependency order (see
:mod:`rvforge_qemu.modules`); a boot with shared directories or networking adds their
modules, which the stub loads before it switches to the disk (and then configures the
network), so the disk image needs none of them.

Built once per kernel, module set and init script, cached under ``<cache>/qemu/bootinit``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rvforge import INIT_SCRIPT, BuildContext, EntryKind, Kernel, Tree, UsageError

from rvforge_qemu.kernels import modules_dir
from rvforge_qemu.modules import guest_module_path, module_bytes, module_order
from rvforge_qemu.stub import assemble_stub

ROOT_MODULES = ("virtio_blk", "ext4", "overlay")
"""What a read-only virtio ext4 root under a RAM overlay needs (plus their dependencies)."""
BOOTINIT_VERSION = "3"


def boot_initramfs(kernel: Kernel, ctx: BuildContext, extra: tuple[str, ...] = (),
                   net: bool = False) -> Path:
    """The cached boot initramfs for ``kernel`` (built on first use), also loading the
    modules ``extra`` and configuring the network if ``net``."""
    moddir = modules_dir(kernel)
    if moddir is None:
        raise UsageError(
            f"kernel {kernel.image} comes without modules, and a disk image needs its "
            f"virtio_blk and ext4 modules: use {ctx.flag('kernel')} auto (Debian's kernel "
            "with its modules), or boot an initramfs image instead")
    wanted = ROOT_MODULES + extra
    key = hashlib.sha256(f"{BOOTINIT_VERSION}\0{moddir}\0{','.join(wanted)}\0{net}\0"
                         f"{INIT_SCRIPT}".encode()).hexdigest()
    output = ctx.cache("qemu", "bootinit") / f"{moddir.name}-{key[:16]}.cpio.gz"
    if output.is_file():
        return output
    modules = module_order(moddir, wanted, "booting a disk image")
    tree = Tree()
    tree.add_dir("/dev")
    tree.add_device("/dev/console", EntryKind.CHAR, 5, 1, mode=0o600)
    tree.add_dir("/root")
    paths = []
    for module in modules:
        paths.append(guest_module_path(module, "/lib/modules"))
        tree.add_file(paths[-1], module_bytes(module), mode=0o644)
    tree.add_file("/init", assemble_stub(paths, INIT_SCRIPT, net=net), mode=0o755)
    packer, fmt = ctx.registry.packer_for(output.name)
    temp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    packer().pack(tree, temp, fmt, ctx)
    temp.replace(output)
    ctx.log.info("built the boot initramfs for disk images", modules=[m.name for m in modules],
                 path=str(output))
    return output
