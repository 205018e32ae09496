"""Which kernel a boot uses: ``--kernel PATH``, ``--kernel NAME`` (a registered kernel
source) or ``auto`` (the default: Debian's riscv64 kernel, through the kernel source named
``debian`` that rvforge-debootstrap registers)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rvforge import BuildContext, Kernel, UsageError

AUTO = "auto"
AUTO_SOURCE = "debian"


def resolve_kernel(spec: str | Path | None, ctx: BuildContext, *,
                   refresh: bool = False) -> Kernel:
    """The kernel ``spec`` names (see the module docstring); ``refresh`` asks a source that
    caches its lookup (``refresh`` option) to look again now."""
    text = str(spec or AUTO)
    name = AUTO_SOURCE if text == AUTO else text
    if "/" in text or Path(text).exists():
        return kernel_from_path(Path(text))
    if name not in ctx.registry.kernels:
        flag = ctx.flag("kernel")
        hint = (f"install rvforge-debootstrap (it provides Debian's kernel) or pass {flag} "
                "PATH" if text == AUTO else
                f"known sources: {', '.join(ctx.registry.kernels.names()) or 'none'}; or pass "
                f"{flag} PATH")
        raise UsageError(f"no kernel source {name!r} for {flag} {text}: {hint}")
    source = ctx.registry.kernels.get(name)
    ctx.log.info("kernel", source=name)
    takes_refresh = "refresh" in {f.name for f in dataclasses.fields(source.Options)}
    options = source.Options(refresh=True) if refresh and takes_refresh else source.Options()
    return source().fetch(options, ctx)


def kernel_symbols(spec: str | Path | None, kernel: Kernel, ctx: BuildContext
                   ) -> Path | None:
    """The ELF file with symbols for gdb of ``kernel``, which ``spec`` named: the image
    itself when it is an ELF (a kernel build's ``vmlinux``), else what its kernel source
    provides (:meth:`rvforge.KernelSource.debug_symbols`, downloading it if needed);
    ``None`` when there are none."""
    with open(kernel.image, "rb") as image:
        if image.read(4) == b"\x7fELF":
            return kernel.image
    text = str(spec or AUTO)
    if "/" in text or Path(text).exists():
        return None
    source = ctx.registry.kernels.get(AUTO_SOURCE if text == AUTO else text)
    return source().debug_symbols(kernel, source.Options(), ctx)


def kernel_from_path(path: Path) -> Kernel:
    """A kernel image file given by path. If it sits in an unpacked distribution kernel
    package (``ROOT/boot/vmlinux-VERSION`` with ``ROOT/[usr/]lib/modules/VERSION``), its
    modules come with it."""
    if not path.is_file():
        raise UsageError(f"--kernel {path}: no such kernel image file")
    version = ""
    for prefix in ("vmlinux-", "vmlinuz-", "Image-"):
        if path.name.startswith(prefix):
            version = path.name[len(prefix):]
    modules = None
    if version and path.parent.name == "boot":
        root = path.parent.parent
        for candidate in (root, root / "usr"):
            if (candidate / "lib" / "modules" / version).is_dir():
                modules = candidate
    return Kernel(path.resolve(), version, modules)


def modules_dir(kernel: Kernel) -> Path | None:
    """``<modules>/lib/modules/<version>`` (or under ``usr/``), if the kernel has one."""
    if kernel.modules is None:
        return None
    for base in (kernel.modules, kernel.modules / "usr"):
        found = base / "lib" / "modules" / kernel.version
        if kernel.version and found.is_dir():
            return found
        candidates = sorted((base / "lib" / "modules").glob("*/kernel"))
        if len(candidates) == 1:
            return candidates[0].parent
    return None
