"""A few files of a packed image, looked up one by one without unpacking it.

An initramfs (cpio, any compression) is read as a stream that stops as soon as the asked
path has gone by (the first member of a name counts); an ext4 image is asked with
e2fsprogs' ``debugfs -R stat`` (no root, no mount). Symlinks resolve inside the image, as
the kernel resolves them for a process whose root is the image.
"""

from __future__ import annotations

import posixpath
import re
import stat
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rvforge.artifacts import Artifact
from rvforge.errors import InputError
from rvforge.formats.cpio import ScannedMember, scan_cpio
from rvforge.formats.ext4 import E2fsprogs, debugfs_quote

__all__ = ["Ext4Files", "ImageFiles", "ImageNode", "InitramfsFiles", "image_files"]

HEAD_BYTES = 8192
"""How much of an executable file is kept: its ELF and program headers and ``PT_INTERP``
(or its ``#!`` line) lie well within it."""
MAX_SYMLINKS = 40
"""Links followed in one lookup before giving up, as Linux's ``MAXSYMLINKS``."""


@dataclass(frozen=True, slots=True)
class ImageNode:
    """One entry of an image.

    :param path: its path in the image (after symlinks were followed).
    :param mode: ``st_mode``: type and permission bits.
    :param target: a symlink's target.
    :param head: the first bytes of an executable file (at most :data:`HEAD_BYTES`).
    """

    path: str
    mode: int
    target: str = ""
    head: bytes = b""

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def executable(self) -> bool:
        """Some execute bit is set (root may run it)."""
        return bool(self.mode & 0o111)


class ImageFiles(ABC):
    """The files of one image, looked up by path.

    :param label: names the image in messages.
    """

    def __init__(self, label: str) -> None:
        self.label = label

    @abstractmethod
    def node(self, path: str) -> ImageNode | None:
        """The entry at the absolute ``path`` whose directories are real directories (no
        symlink in it is followed), or ``None``."""

    def resolve(self, path: str) -> tuple[str, ImageNode | None]:
        """``path`` with every symlink followed inside the image: the path reached and its
        entry (``None`` when something on the way is missing, not a directory, or the
        links loop)."""
        done, todo, links = "/", [p for p in path.split("/") if p], 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                done = posixpath.dirname(done)
                continue
            here = posixpath.join(done, part)
            found = self.node(here)
            if found is None:
                return here, None
            if found.is_symlink:
                links += 1
                if links > MAX_SYMLINKS:
                    return here, None
                done = "/" if found.target.startswith("/") else done
                todo[:0] = [p for p in found.target.split("/") if p]
                continue
            if todo and not found.is_dir:
                return here, None
            done = here
        return done, self.node(done) if done != "/" else ImageNode("/", stat.S_IFDIR | 0o755)


def _executable_heads(path: str, mode: int) -> int:
    return HEAD_BYTES if mode & 0o111 else 0


class InitramfsFiles(ImageFiles):
    """The files of a cpio archive, read lazily (see the module docstring)."""

    def __init__(self, path: Path, label: str | None = None) -> None:
        super().__init__(label or str(path))
        self._members: Iterator[ScannedMember] | None = scan_cpio(
            path, head=_executable_heads, label=self.label)
        self._seen: dict[str, ScannedMember] = {}
        self._data: dict[tuple[int, int, int], bytes] = {}

    def node(self, path: str) -> ImageNode | None:
        while path not in self._seen and self._next():
            pass
        member = self._seen.get(path)
        if member is None:
            return None
        head = member.head
        if member.inode is not None and not member.size:  # another name carries the data
            while member.inode not in self._data and self._next():
                pass
            head = self._data.get(member.inode, b"")
        return ImageNode(path, member.mode, member.target, head)

    def _next(self) -> bool:
        """Read one more member; False at the end of the archive."""
        member = next(self._members, None) if self._members is not None else None
        if member is None:
            self._members = None
            return False
        self._seen.setdefault(member.path, member)
        if member.inode is not None and member.size:
            self._data.setdefault(member.inode, member.head)
        return True


_STAT = re.compile(r"Type: ([a-zA-Z ]+?)\s+Mode:\s+([0-7]+)")
_SIZE = re.compile(r"\bSize: (\d+)")
_FAST_LINK = re.compile(r'Fast link dest: "(.*)"$', re.MULTILINE)
_TYPES = {"regular": stat.S_IFREG, "directory": stat.S_IFDIR, "symlink": stat.S_IFLNK,
          "character special": stat.S_IFCHR, "block special": stat.S_IFBLK,
          "FIFO": stat.S_IFIFO, "socket": stat.S_IFSOCK}


class Ext4Files(ImageFiles):
    """The files of an ext4 image, each asked of ``debugfs``."""

    def __init__(self, path: Path, label: str | None = None) -> None:
        super().__init__(label or str(path))
        self.path = path
        self.debugfs = E2fsprogs.find().debugfs

    def node(self, path: str) -> ImageNode | None:
        out = self._debugfs(f"stat {debugfs_quote(path)}")
        found = _STAT.search(out.decode("utf-8", "surrogateescape"))
        if found is None:
            return None
        text = out.decode("utf-8", "surrogateescape")
        mode = _TYPES.get(found.group(1), 0) | int(found.group(2), 8)
        if stat.S_ISLNK(mode):
            fast = _FAST_LINK.search(text)
            size = int(m.group(1)) if (m := _SIZE.search(text)) else 0
            target = fast.group(1) if fast else self._cat(path, size).decode(
                "utf-8", "surrogateescape")
            return ImageNode(path, mode, target)
        head = self._cat(path, HEAD_BYTES) if stat.S_ISREG(mode) and mode & 0o111 else b""
        return ImageNode(path, mode, "", head)

    def _cat(self, path: str, limit: int) -> bytes:
        return self._debugfs(f"cat {debugfs_quote(path)}", limit)

    def _debugfs(self, request: str, limit: int = 1 << 20) -> bytes:
        """What ``debugfs -R REQUEST`` prints, at most ``limit`` bytes of it."""
        with subprocess.Popen([self.debugfs, "-R", request, str(self.path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            out = proc.stdout.read(limit)
            proc.kill()
            err = proc.stderr.read()
        if not out and b"while trying to open" in err:
            raise InputError(f"{self.label}: debugfs cannot read it: "
                             f"{err.decode(errors='replace').strip().splitlines()[-1]}")
        return out


def image_files(artifact: Artifact) -> ImageFiles:
    """The files of a bootable artifact (an initramfs or a disk image)."""
    if artifact.kind == "disk":
        return Ext4Files(artifact.path)
    return InitramfsFiles(artifact.path)
