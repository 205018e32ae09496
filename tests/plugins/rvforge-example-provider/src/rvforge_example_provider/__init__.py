"""An example third-party rvforge plugin, installed like any other distribution.

It contributes a provider, ``skeleton``, that lays out an FHS skeleton root filesystem
(directories, ``/etc/passwd``, ``/etc/group``, ``/etc/hostname``) with root ownership and
sane modes, and, when given ``--source``, adds a host directory's contents on top. It only
uses names exported by ``rvforge``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rvforge

DIRECTORIES = {
    "/bin": 0o755, "/dev": 0o755, "/etc": 0o755, "/home": 0o755, "/lib": 0o755,
    "/proc": 0o555, "/root": 0o700, "/run": 0o755, "/sbin": 0o755, "/sys": 0o555,
    "/tmp": 0o1777, "/usr/bin": 0o755, "/usr/lib": 0o755, "/var/log": 0o755,
}


@dataclass
class SkeletonOptions:
    hostname: str = "rvforge"
    source: Path | None = None


class SkeletonProvider(rvforge.Provider[SkeletonOptions]):
    name = "skeleton"
    summary = "an empty FHS skeleton (example third-party plugin)"
    Options = SkeletonOptions

    def provide(self, options: SkeletonOptions, ctx: rvforge.BuildContext) -> rvforge.Tree:
        tree = rvforge.Tree()
        for path, mode in DIRECTORIES.items():
            tree.add_dir(path, mode=mode)
        tree.add_file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        tree.add_file("/etc/group", b"root:x:0:\n")
        tree.add_file("/etc/hostname", f"{options.hostname}\n".encode())
        if options.source is not None:
            if not Path(options.source).is_dir():
                raise rvforge.InputError(f"{options.source}: not a directory (check --source)")
            for host in sorted(Path(options.source).rglob("*")):
                if host.is_file() and not host.is_symlink():
                    rel = host.relative_to(options.source).as_posix()
                    tree.add_file(f"/{rel}", rvforge.HostFile.of(host), mode=0o755)
        ctx.log.info("skeleton ready", entries=len(tree))
        return tree


@rvforge.hookimpl
def rvforge_register_providers(register: Callable[[type[rvforge.Provider]], None]) -> None:
    register(SkeletonProvider)
