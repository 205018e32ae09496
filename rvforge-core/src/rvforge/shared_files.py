"""The host files a guest sees through shared directories (``--share HOST:GUEST``): which
of them a command runs, and what their ELF files need of the CPU, for ``--machine auto``.

A command that names files under a share's guest path (``/mnt/vsum``, ``sh -c
'/mnt/bin/x'``) counts with those files; a command that names none counts with every
file of the shares, up to :data:`MAX_SHARED_FILES` (a note says when the cap is hit).
Needs are keyed by the host path, so messages name the file the user has.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.riscv.isa import Needs

MAX_SHARED_FILES = 2000
"""How many files of the shares are read at most when the command names none of them."""

_WORDS = re.compile(r"[^\s;&|()<>'\"`=]+")


@dataclass(frozen=True)
class SharedDirectory:
    """A host directory the guest sees at ``guest`` (an absolute guest path)."""

    host: Path
    guest: str

    def host_path(self, guest_path: str) -> Path | None:
        """The host file behind ``guest_path``, or ``None`` when it is not under this
        share (or leaves it through ``..``)."""
        normal = posixpath.normpath(guest_path)
        if normal != self.guest and not normal.startswith(self.guest.rstrip("/") + "/"):
            return None
        rest = posixpath.relpath(normal, self.guest)
        return self.host if rest == "." else self.host / rest

    def files(self) -> Iterator[Path]:
        """Every regular file under the host directory (symlinks not followed), in a
        stable order."""
        for top, dirs, names in os.walk(self.host):
            dirs.sort()
            for name in sorted(names):
                path = Path(top, name)
                if not path.is_symlink() and path.is_file():
                    yield path

    def guest_path(self, host: Path) -> str:
        """Where the guest sees ``host`` (a file under :attr:`host`)."""
        return posixpath.join(self.guest, host.relative_to(self.host).as_posix())


def command_files(shares: Sequence[SharedDirectory], argv: Sequence[str]) -> list[Path]:
    """The host files of ``shares`` that the words of ``argv`` name by their guest path
    (each once, in order); words of a shell command line (``sh -c '...'``) count too."""
    found: dict[Path, None] = {}
    for arg in argv:
        for word in _WORDS.findall(arg):
            if not word.startswith("/"):
                continue
            for share in shares:
                host = share.host_path(word)
                if host is not None and host.is_file():
                    found[host] = None
    return list(found)


def shared_needs(shares: Sequence[SharedDirectory], argv: Sequence[str],
                 ctx: BuildContext, *, cap: int = MAX_SHARED_FILES) -> dict[str, Needs]:
    """What the RISC-V ELF files among the shared files that count (see the module
    docstring) need of the CPU, by host path; with ``ctx.deep``, their instructions too."""
    from rvforge.riscv.needs import tree_needs
    from rvforge.tree import HostFile, Tree

    if not shares:
        return {}
    files = command_files(shares, argv)
    if not files:
        files = []
        for path in itertools.chain.from_iterable(s.files() for s in shares):
            if len(files) == cap:
                ctx.log.warning(f"--machine auto read only the first {cap} files of the "
                                "shares; name the program the command runs by its guest "
                                "path to have it counted",
                                shares=", ".join(str(s.host) for s in shares))
                break
            files.append(path)
    tree = Tree()
    for path in files:
        try:
            tree.add_file(str(path.resolve()), HostFile.of(path))
        except OSError as error:
            ctx.log.debug("shared file not read", path=str(path), error=str(error))
    return tree_needs(tree, ctx, deep=ctx.deep)
