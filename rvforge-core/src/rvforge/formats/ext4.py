"""ext4 disk images of a :class:`~rvforge.Tree`, made with e2fsprogs and no root.

``mke2fs -d DIR`` copies a host directory into a new filesystem, but with the host's
owners and without device nodes (making those needs root). So the tree is staged in a
scratch directory as the current user (files, directories, symlinks, hardlinks, fifos),
``mke2fs -t ext4 -d`` builds the image from it, and one ``debugfs -w`` script then sets
every inode's uid, gid, mode and times from the tree and creates the device nodes with
``mknod``. Every inode rvforge writes gets the tree's times; the UUID and directory hash
seed derive from the tree, and ``SOURCE_DATE_EPOCH`` is handed to e2fsprogs. e2fsprogs
1.47.0 (Debian 12) still stamps the superblock and its own reserved inodes with the wall
clock, so images are byte-identical only with an e2fsprogs that honours
``SOURCE_DATE_EPOCH`` (1.47.1 and later).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from rvforge.errors import InputError, ToolMissingError
from rvforge.formats.entries import check_header_fields, read_content, with_device_nodes
from rvforge.progress import Task
from rvforge.tree import Entry, EntryKind, Tree

__all__ = ["E2fsprogs", "Ext4Error", "debugfs_quote", "debugfs_script", "image_size",
           "inode_count", "write_ext4"]

BLOCK_SIZE = 4096
INODE_SIZE = 256
HEADROOM = 1.25
"""Image size per byte of content: room for metadata and for the guest to write."""
FIXED_HEADROOM = 64 << 20
"""Added to every image: the journal, and free space even for a tiny tree."""
ATTEMPTS = 3
"""mke2fs runs before giving up when the estimated size turns out too small."""
SBIN_PATH = "/usr/sbin:/sbin"
_NAMESPACE = uuid.UUID("1b7a4f8e-2c43-4f7e-9a55-7a1c3e0d9b21")


class Ext4Error(InputError):
    """mke2fs or debugfs failed on the tree or the output (exit 2: the tools are there;
    a missing one is a :class:`ToolMissingError`)."""


@dataclass(frozen=True, slots=True)
class E2fsprogs:
    """Paths of the e2fsprogs programs the packer runs."""

    mke2fs: str
    debugfs: str

    @classmethod
    def find(cls) -> E2fsprogs:
        """Locate the tools (also in the sbin directories a normal user's PATH lacks)."""
        path = os.pathsep.join(p for p in (os.environ.get("PATH", ""), SBIN_PATH) if p)
        found = {name: shutil.which(name, path=path) for name in ("mke2fs", "debugfs")}
        missing = [name for name, where in found.items() if where is None]
        if missing:
            raise ToolMissingError(
                f"{' and '.join(missing)} not found: the ext4 packer needs e2fsprogs "
                "(apt-get install e2fsprogs)"
            )
        return cls(found["mke2fs"], found["debugfs"])  # type: ignore[arg-type]


def write_ext4(tree: Tree, output: Path, *, epoch: int, scratch: Path,
               progress: Task | None = None) -> None:
    """Write ``tree`` to ``output`` as an ext4 image sized from the tree plus headroom.

    :param epoch: ``SOURCE_DATE_EPOCH``: later mtimes are written as this.
    :param scratch: an empty directory for staging (it holds a copy of the files).
    :param progress: advanced by the bytes of file data staged.
    """
    tools = E2fsprogs.find()
    tree = with_device_nodes(tree)
    for entry in tree.walk():
        check_header_fields(entry, "ext4")
    stage = scratch / "root"
    stage.mkdir(parents=True)
    _stage(tree, stage, progress)
    script = scratch / "fixup.debugfs"
    script.write_text(debugfs_script(tree, epoch), encoding="utf-8", errors="surrogateescape")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "E2FSPROGS_FAKE_TIME": str(epoch),
           "LC_ALL": "C"}
    size = image_size(tree)
    for attempt in range(ATTEMPTS):
        output.unlink(missing_ok=True)
        result = _mke2fs(tools, tree, stage, output, size, env)
        if result.returncode == 0:
            break
        if attempt + 1 < ATTEMPTS and _out_of_space(result.stderr):
            size = size * 3 // 2
            continue
        raise Ext4Error(f"{output}: mke2fs failed (exit {result.returncode}): "
                        f"{_last_line(result.stderr)}{_space_hint(result.stderr)}")
    result = subprocess.run([tools.debugfs, "-w", "-f", str(script), str(output)],
                            check=False, capture_output=True, text=True, env=env,
                            errors="surrogateescape")
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and not line.startswith("debugfs ")]
    if result.returncode != 0 or problems:
        detail = problems[0] if problems else _last_line(result.stderr)
        raise Ext4Error(f"{output}: debugfs failed setting owners and devices: "
                        f"{detail}{_space_hint(detail)}")


def image_size(tree: Tree) -> int:
    """Bytes for an image of ``tree``: its blocks times :data:`HEADROOM`, the inode
    tables, and :data:`FIXED_HEADROOM`, rounded up to a MiB."""
    blocks = 0
    for entry in tree:
        if entry.kind is EntryKind.FILE:
            blocks += -(-entry.size // BLOCK_SIZE)
        elif entry.kind is EntryKind.DIR:
            blocks += 1 + len(tree.children(entry.path)) * 64 // BLOCK_SIZE
        elif entry.kind is EntryKind.SYMLINK and len(entry.target or "") >= 60:
            blocks += 1
    size = int(blocks * BLOCK_SIZE * HEADROOM) + inode_count(tree) * INODE_SIZE
    size += FIXED_HEADROOM
    return -(-size // (1 << 20)) << 20


def inode_count(tree: Tree) -> int:
    """Inodes to make: the tree's half again, plus 1024 (room to add files)."""
    return len(tree) * 3 // 2 + 1024


def debugfs_script(tree: Tree, epoch: int) -> str:
    """The debugfs commands that give every inode its tree metadata and create the
    device nodes (staging could do neither without root)."""
    lines: list[str] = []
    done: set[str] = set()
    for entry in tree.walk():
        if entry.kind in (EntryKind.CHAR, EntryKind.BLOCK):
            kind = "c" if entry.kind is EntryKind.CHAR else "b"
            major, minor = entry.rdev or (0, 0)
            lines += [f"cd {debugfs_quote(entry.parent)}",
                      f"mknod {debugfs_quote(entry.name)} {kind} {major} {minor}", "cd /"]
        meta = tree.data_entry(entry) if entry.kind is EntryKind.HARDLINK else entry
        if meta.path in done:
            continue  # another name of an inode already set
        done.add(meta.path)
        path = debugfs_quote(entry.path)
        mtime = min(max(meta.mtime, 0), epoch)
        lines += [f"sif {path} {field} {value}" for field, value in (
            ("uid", meta.uid), ("gid", meta.gid), ("mode", f"0{meta.st_mode:o}"),
            ("mtime", mtime), ("atime", mtime), ("ctime", mtime), ("crtime", mtime),
            ("mtime_extra", 0), ("atime_extra", 0), ("ctime_extra", 0),
            ("crtime_extra", 0),
        )]
    return "\n".join(lines) + "\n"


def debugfs_quote(path: str) -> str:
    """``path`` as one debugfs argument (libss: double quotes, ``""`` for a quote)."""
    if "\n" in path or "\r" in path:
        raise InputError(f"{path!r}: a name with a line break cannot go into an ext4 image "
                         "made by debugfs; rename it")
    return '"' + path.replace('"', '""') + '"'


def _stage(tree: Tree, stage: Path, progress: Task | None) -> None:
    """Recreate the tree under ``stage`` as the current user (devices are left to
    debugfs; owners and modes are fixed there too)."""
    staged: dict[str, Path] = {}  # data entry path -> its first staged name
    for entry in tree.walk():
        if entry.path == "/":
            continue
        host = stage / entry.path[1:]
        try:
            if entry.kind is EntryKind.DIR:
                host.mkdir(mode=0o755)
            elif entry.kind in (EntryKind.FILE, EntryKind.HARDLINK):
                data = tree.data_entry(entry)
                if data.path in staged:
                    os.link(staged[data.path], host)
                else:
                    _copy(data, host, progress)
                    staged[data.path] = host
            elif entry.kind is EntryKind.SYMLINK:
                os.symlink(entry.target or "", host)
            elif entry.kind is EntryKind.FIFO:
                os.mkfifo(host, 0o644)
        except OSError as error:
            hint = ("; the scratch space is full (set TMPDIR to a larger disk)"
                    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "")
            raise InputError(f"{entry.path}: cannot stage it for mke2fs in {stage} "
                             f"({error.strerror}){hint}") from None


def _copy(entry: Entry, host: Path, progress: Task | None) -> None:
    with open(host, "wb") as out:
        for block in read_content(entry):
            out.write(block)
            if progress is not None:
                progress.advance(len(block))
    os.chmod(host, 0o644)


def _mke2fs(tools: E2fsprogs, tree: Tree, stage: Path, output: Path, size: int,
            env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    seed = str(uuid.uuid5(_NAMESPACE, _fingerprint(tree)))
    inodes = max(inode_count(tree), size // 16384)
    command = [
        tools.mke2fs, "-q", "-F", "-t", "ext4", "-b", str(BLOCK_SIZE), "-I", str(INODE_SIZE),
        "-N", str(inodes), "-L", "rootfs", "-U", seed, "-E", f"hash_seed={seed}",
        "-d", str(stage), str(output), f"{size // 1024}k",
    ]
    return subprocess.run(command, check=False, capture_output=True, text=True, env=env,
                          errors="surrogateescape")


def _fingerprint(tree: Tree) -> str:
    digest = hashlib.sha256()
    for entry in tree.walk():
        digest.update(f"{entry.path}\0{entry.kind.value}\0{entry.size}\n".encode(
            "utf-8", "surrogateescape"))
    return digest.hexdigest()


def _out_of_space(stderr: str) -> bool:
    text = stderr.lower()
    return "no space" in text or "could not allocate" in text or "not enough" in text


def _space_hint(text: str) -> str:
    """A hint for a message quoting e2fsprogs when it ran out of space."""
    return "; the output's disk is full" if "no space left" in text.lower() else ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
