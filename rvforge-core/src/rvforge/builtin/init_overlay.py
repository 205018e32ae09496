"""The ``init`` overlay: rvforge's ``/init`` for initramfs boots.

The script is POSIX sh (busybox ash and dash both run it) and uses only shell built-ins
plus ``mount``, ``mkdir``, ``sync``, ``sleep`` and ``poweroff`` if present: no ``base64``,
no ``stty``, no udev, so it works on a busybox image and on a Debian minbase alike (both
are tested in tests/test_boot.py). A disk image's root runs the same script, passed by the
boot initramfs's stub (``rvforge_qemu.stub``) as ``/bin/sh -c``.

The protocol it speaks is documented in :mod:`rvforge.protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rvforge.components import Overlay
from rvforge.context import BuildContext
from rvforge.hookspecs import hookimpl
from rvforge.protocol import INIT_SCRIPT
from rvforge.tree import Tree


@dataclass
class InitOptions:
    """:param replace: write rvforge's ``/init`` even if the tree has one."""

    replace: bool = False


class InitOverlay(Overlay[InitOptions]):
    name = "init"
    summary = "rvforge's /init: mounts, ready marker, serves the launcher's commands, powers off"
    Options = InitOptions

    def apply(self, tree: Tree, options: InitOptions, ctx: BuildContext) -> None:
        if "/init" in tree and not options.replace:
            ctx.log.info("keeping the tree's own /init")
            return
        tree.add_file("/init", INIT_SCRIPT.encode(), mode=0o755)


@hookimpl
def rvforge_register_overlays(register: Callable[[type[Overlay]], None]) -> None:
    register(InitOverlay)
