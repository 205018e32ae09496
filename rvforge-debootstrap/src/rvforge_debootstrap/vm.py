"""``--configure vm``: debootstrap's second stage inside ``qemu-system-riscv64``.

No root and no binfmt_misc: the unpacked tree (with the first-boot hook and rvforge's
``/init``) is packed as an uncompressed initramfs and booted through the registered
``qemu-virt`` launcher; the guest runs the hook (preinsts, ``dpkg --configure -a``) and
writes the configured root filesystem as a tar stream (numeric owners, one file system,
so ``/proc``, ``/sys``, ``/dev`` and the tmpfs mounts stay out) on its standard output,
which the launcher returns. That tar replaces the tree's contents
(:func:`~rvforge_debootstrap.firstboot.adopt_configured`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rvforge import (
    BootFailedError,
    BuildContext,
    Step,
    ToolMissingError,
    Tree,
    build_options,
    pack,
)

from rvforge_debootstrap.firstboot import HOOK, adopt_configured

LAUNCHER = "qemu-virt"
MACHINE = "qemu-virt"
TIMEOUT = 900.0
MIN_MEMORY_MB = 2048


def memory_for(tree: Tree) -> int:
    """RAM for the VM: the initramfs and its unpacked copy, plus room for dpkg and tar."""
    return max(MIN_MEMORY_MB, (tree.stats().file_bytes * 5 // 2 >> 20) + 1024)
# rvforge's /init runs first-boot hooks before the command (the hook then deletes itself);
# an init that did not leaves it for the command to run.
SCRIPT = (f"{{ [ ! -e {HOOK} ] || {HOOK} >&2; }} && cd / && "
          "tar --numeric-owner --one-file-system --exclude=./init -cf - .")


def preflight(ctx: BuildContext) -> None:
    """Check that the launcher and rvforge's ``/init`` are installed."""
    if LAUNCHER not in ctx.registry.launchers or "init" not in ctx.registry.overlays:
        raise ToolMissingError(f"--configure vm needs the {LAUNCHER!r} launcher and the "
                               "'init' overlay: install rvforge-qemu, or use --configure "
                               "first-boot")


def configure_in_vm(tree: Tree, ctx: BuildContext) -> None:
    """Configure ``tree`` in a VM and replace its contents with the configured tree."""
    preflight(ctx)
    registry = ctx.registry
    boot_tree = tree.copy()
    init_cls = registry.overlays.get("init")
    init_cls().apply(boot_tree, build_options(init_cls.Options, {"replace": True},
                                              owner="overlay 'init'"), ctx)
    work = ctx.scratch("debootstrap", "vm")
    artifact = pack(registry, boot_tree, Step("cpio", None), "cpio", work / "configure.cpio",
                    ctx)
    launcher_cls = registry.launchers.get(LAUNCHER)
    options = build_options(launcher_cls.Options,
                            {"timeout": TIMEOUT, "memory": memory_for(tree)},
                            owner=f"launcher {LAUNCHER!r}")
    machine = registry.machines.get(MACHINE)
    ctx.log.info("configuring in a VM", machine=MACHINE, image_bytes=artifact.size)
    result = launcher_cls().run(artifact, machine, ["sh", "-c", SCRIPT], options, ctx)
    if not result.ok or result.status != 0:
        tail = " | ".join(result.stderr.decode(errors="replace").strip().splitlines()[-5:])
        reason = result.reason or f"exit status {result.status}"
        raise BootFailedError(f"--configure vm: the second stage failed in the VM ({reason}): "
                              f"{tail}")
    stream = work / "configured.tar"
    stream.write_bytes(result.stdout)
    adopt_configured(tree, stream, Path(tempfile.mkdtemp(prefix="contents-", dir=work)), "vm",
                     "see the console log")
    ctx.log.info("configured in a VM", seconds=round(result.seconds, 1),
                 entries=len(tree))
