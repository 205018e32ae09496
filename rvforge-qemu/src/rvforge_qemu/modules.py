"""The kernel's own modules, handed to a guest at boot without rebuilding its image.

A kernel from a distribution package comes with ``lib/modules/<version>``
(:attr:`rvforge.Kernel.modules`); Debian ships the files ``.ko.xz``, and an unpacked
``.deb`` has no ``modules.dep`` (``depmod`` writes it at install time), so the load order
follows each module's ``depends=`` and ``softdep=pre:`` in its ``.modinfo`` section. A soft
dependency naming a crypto algorithm (``crypto-crc32c``) is met by the module
``<algorithm>_generic``; a module listed in ``modules.builtin`` needs no file.

For an initramfs boot the modules travel in a second, uncompressed cpio placed before the
image in ``-initrd`` (the kernel unpacks concatenated archives): the files under
:data:`MODULE_DIR` and :data:`SETUP_PROGRAM`, a static program that loads them in order
and configures the network (:mod:`rvforge_qemu.stub`); rvforge's ``/init`` runs it first.
That cpio is cached per kernel, module set and setup, under ``<cache>/qemu/modules``.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path

from rvforge import BuildContext, InputError, Kernel, Tree, UsageError
from rvforge.formats.compression import DECOMPRESS_ERRORS, open_decompressed
from rvforge.formats.cpio import write_cpio
from rvforge.net.download import write_atomic
from rvforge.protocol import SETUP_PROGRAM

from rvforge_qemu.kernels import modules_dir
from rvforge_qemu.stub import assemble_setup

MODULE_DIR = "/.rvforge/modules"
"""Where the module cpio puts its ``.ko`` files (a path no image uses, so nothing clashes
with the image's own ``/lib``, which may be a symlink)."""
SHARE_MODULES = ("9p", "9pnet_virtio")
NET_MODULES = ("virtio_net",)
MODULES_VERSION = "1"


def module_order(moddir: Path, wanted: tuple[str, ...], purpose: str) -> list[Path]:
    """Module files for ``wanted`` and what they need, dependencies first (built-in
    modules need no file and are left out).

    :param purpose: what the modules are for, in the error naming a missing one.
    """
    files = {_module_name(p): p for p in moddir.rglob("*.ko*")}
    builtin = _builtin_names(moddir)
    order: list[Path] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in builtin:
            return
        if name not in files:
            name = f"{name.removeprefix('crypto_')}_generic"
            if name in builtin:
                return
            if name not in files:
                raise UsageError(f"kernel modules in {moddir} lack {name!r}, needed for "
                                 f"{purpose}: boot a kernel that has it (--kernel auto)")
        if files[name] in order or name in visiting:
            return
        visiting.add(name)
        for dep in _deps(modinfo(module_bytes(files[name]))):
            visit(dep)
        order.append(files[name])

    for name in wanted:
        visit(name)
    return order


def modinfo(image: bytes) -> dict[str, list[str]]:
    """The ``depends=`` and ``softdep=`` strings of a module's ``.modinfo`` section."""
    info: dict[str, list[str]] = {}
    for match in re.finditer(rb"(?:^|\0)(depends|softdep)=([^\0]*)", image):
        info.setdefault(match.group(1).decode(), []).append(match.group(2).decode())
    return info


def module_bytes(path: Path) -> bytes:
    """A module file's ELF bytes (``.ko.xz``, ``.ko.zst``, ``.ko.gz`` decompressed, by
    their magic: the kernel's ``finit_module`` takes compressed modules only when built
    to)."""
    try:
        with open_decompressed(path) as stream:
            return stream.read()
    except DECOMPRESS_ERRORS as error:
        raise InputError(f"kernel module {path}: cannot decompress it ({error}); the "
                         "kernel package is damaged: remove it from the cache") from None


def guest_module_path(module: Path, directory: str = MODULE_DIR) -> str:
    """Where ``module`` is put in a boot archive (decompressed, ``NAME.ko``)."""
    return f"{directory}/{_module_name(module)}.ko"


def wanted_modules(*, shares: bool, net: bool) -> tuple[str, ...]:
    """The modules a boot with shared directories and/or networking needs."""
    return (SHARE_MODULES if shares else ()) + (NET_MODULES if net else ())


def modules_cpio(kernel: Kernel, wanted: tuple[str, ...], net: bool,
                 ctx: BuildContext) -> Path:
    """The cached cpio with ``wanted`` (and their dependencies) for ``kernel`` and the
    setup program loading them (and configuring the network if ``net``)."""
    moddir = modules_dir(kernel)
    if moddir is None:
        raise UsageError(
            f"kernel {kernel.image} comes without modules, and this boot needs "
            f"{', '.join(wanted)}: use {ctx.flag('kernel')} auto (Debian's kernel with its "
            "modules)")
    key = hashlib.sha256(
        f"{MODULES_VERSION}\0{moddir}\0{','.join(wanted)}\0{net}".encode()).hexdigest()
    output = ctx.cache("qemu", "modules") / f"{moddir.name}-{key[:16]}.cpio"
    if output.is_file():
        return output
    modules = module_order(moddir, wanted, "this boot's shares and network")
    tree = Tree()
    tree.add_dir("/.rvforge", mode=0o755)
    tree.add_dir(MODULE_DIR, mode=0o755)
    paths = []
    for module in modules:
        paths.append(guest_module_path(module))
        tree.add_file(paths[-1], module_bytes(module), mode=0o644)
    tree.add_file(SETUP_PROGRAM, assemble_setup(paths, net=net), mode=0o755)
    buffer = io.BytesIO()
    write_cpio(tree, buffer, epoch=0)
    write_atomic(output, buffer.getvalue(), within=ctx.cache_dir)
    ctx.log.info("built the module archive", modules=[m.name for m in modules],
                 path=str(output))
    return output


def concatenated_initrd(parts: list[Path], dest: Path) -> Path:
    """``dest`` holding ``parts`` one after the other (each cpio is padded to 4 bytes,
    which the kernel's unpacker expects between archives)."""
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
            out.write(b"\0" * (-out.tell() % 4))
    return dest


def _builtin_names(moddir: Path) -> set[str]:
    try:
        text = (moddir / "modules.builtin").read_text()
    except OSError:
        return set()
    return {_module_name(Path(line.strip())) for line in text.splitlines() if line.strip()}


def _deps(info: dict[str, list[str]]) -> list[str]:
    deps = [d for value in info.get("depends", []) for d in value.split(",") if d]
    for value in info.get("softdep", []):
        match = re.search(r"pre:\s*([^:]*?)(?:\s+post:|$)", value)
        if match:
            deps = match.group(1).split() + deps
    return deps


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")
