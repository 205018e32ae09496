"""The boot initramfs for disk images: the kernel's own block and filesystem modules and
:mod:`rvforge_qemu.stub` as ``/init``, which mounts ``/dev/vda`` and runs rvforge's init
script there.

Modules come from the kernel's ``lib/modules/<version>`` (Debian ships them ``.ko.xz``;
they are decompressed here). Their order follows each module's ``depends=`` and
``softdep=pre:`` in its ``.modinfo`` section, since an unpacked ``.deb`` has no
``modules.dep`` (``depmod`` writes it at install time). A soft dependency naming a crypto
algorithm (``crypto-crc32c``) is met by the module ``<algorithm>_generic``.

Built once per kernel and init script, cached under ``<cache>/qemu/bootinit``.
"""

from __future__ import annotations

import hashlib
import lzma
import re
from pathlib import Path

from rvforge import INIT_SCRIPT, BuildContext, EntryKind, Kernel, Tree, UsageError

from rvforge_qemu.kernels import modules_dir
from rvforge_qemu.stub import assemble_stub

ROOT_MODULES = ("virtio_blk", "ext4")
"""What a virtio ext4 root needs (plus their dependencies)."""
BOOTINIT_VERSION = "1"


def boot_initramfs(kernel: Kernel, ctx: BuildContext) -> Path:
    """The cached boot initramfs for ``kernel`` (built on first use)."""
    moddir = modules_dir(kernel)
    if moddir is None:
        raise UsageError(
            f"kernel {kernel.image} comes without modules, and a disk image needs its "
            "virtio_blk and ext4 modules: use --kernel auto (Debian's kernel with its "
            "modules), or boot an initramfs image instead")
    key = hashlib.sha256(f"{BOOTINIT_VERSION}\0{moddir}\0{INIT_SCRIPT}".encode()).hexdigest()
    output = ctx.cache("qemu", "bootinit") / f"{moddir.name}-{key[:16]}.cpio.gz"
    if output.is_file():
        return output
    modules = module_order(moddir, ROOT_MODULES)
    tree = Tree()
    tree.add_dir("/dev")
    tree.add_device("/dev/console", EntryKind.CHAR, 5, 1, mode=0o600)
    tree.add_dir("/root")
    paths = []
    for module in modules:
        path = f"/lib/modules/{module.name.split('.')[0]}.ko"
        tree.add_file(path, _module_bytes(module), mode=0o644)
        paths.append(path)
    tree.add_file("/init", assemble_stub(paths, INIT_SCRIPT), mode=0o755)
    packer, fmt = ctx.registry.packer_for(output.name)
    temp = output.with_suffix(".tmp")
    packer().pack(tree, temp, fmt, ctx)
    temp.replace(output)
    ctx.log.info("built the boot initramfs for disk images", modules=[m.name for m in modules],
                 path=str(output))
    return output


def module_order(moddir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """Module files for ``wanted`` and what they need, dependencies first."""
    files = {_module_name(p): p for p in moddir.rglob("*.ko*")}
    order: list[Path] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name not in files:
            name = f"{name.removeprefix('crypto_')}_generic"
            if name not in files:
                raise UsageError(f"kernel modules in {moddir} lack {name!r}, needed to mount "
                                 "a disk image")
        if files[name] in order or name in visiting:
            return
        visiting.add(name)
        info = modinfo(_module_bytes(files[name]))
        for dep in _deps(info):
            visit(dep)
        order.append(files[name])

    for name in wanted:
        visit(name)
    return order


def modinfo(image: bytes) -> dict[str, list[str]]:
    """The ``key=value`` strings of a module's ``.modinfo`` section."""
    info: dict[str, list[str]] = {}
    for match in re.finditer(rb"(?:^|\0)(depends|softdep)=([^\0]*)", image):
        info.setdefault(match.group(1).decode(), []).append(match.group(2).decode())
    return info


def _deps(info: dict[str, list[str]]) -> list[str]:
    deps = [d for value in info.get("depends", []) for d in value.split(",") if d]
    for value in info.get("softdep", []):
        match = re.search(r"pre:\s*([^:]*?)(?:\s+post:|$)", value)
        if match:
            deps = match.group(1).split() + deps
    return deps


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data
