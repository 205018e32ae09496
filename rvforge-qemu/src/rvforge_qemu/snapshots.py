"""Saved ready states of guests: the key that says when one may be restored, and the store.

A snapshot is the whole state of a VM just after rvforge's ``/init`` said it was ready
(QMP ``migrate``, see :mod:`rvforge_qemu.qmp`), compressed with zstd. Restoring it is
correct only into the same VM, so the key holds everything the guest's memory depends on:

- the QEMU binary (path, version, size and modification time);
- the QEMU command line as built for the boot (machine, CPU and its flags, memory, CPUs,
  firmware, the kernel command line, every device), with each file it names (kernel,
  initramfs, disk image) replaced by its content digest, and the values the host picks
  per run made neutral: the host directory behind a share (``-fsdev ...,path=``) and the
  port forwards (``hostfwd=``). The *shape* stays: how many shares, network or not.

A file's digest is remembered against its identity (device, inode, size, modification
time), so a large image is hashed once, not on every run.

The store lives at ``<cache>/qemu/snapshots/<key>/`` (``state.zst`` and ``meta.json``),
written under a temporary name and renamed, so two first runs at once leave one whole
snapshot. Loading validates: a snapshot whose metadata is missing, foreign (another key,
another format) or whose state file is truncated is not used (the run boots cold and says
so in one line). The store is capped (:data:`DEFAULT_CAP_BYTES`, or
``$RVFORGE_SNAPSHOT_CACHE_MB``): after a save, the least recently used snapshots are
removed until the rest fits. ``rvforge cache list`` shows them as kind ``snapshots``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvforge import BuildContext
from rvforge.net.download import write_atomic

from rvforge_qemu.qemubin import SystemQemu

FORMAT = 7
"""The store's layout and the guest-side conventions a snapshot assumes (shares unmounted
at save time, the refresh program of :mod:`rvforge_qemu.fresh` in the guest's ``/run``;
the boot's console kept beside it); a snapshot of another format is not restored."""
DEFAULT_CAP_BYTES = 4 << 30
CAP_VARIABLE = "RVFORGE_SNAPSHOT_CACHE_MB"
STATE = "state.zst"
META = "meta.json"
CONSOLE = "console.log"
"""The boot's console up to the save: a restored run's log starts with it."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PATH_OPTIONS = ("-kernel", "-initrd", "-bios")
"""QEMU options whose value is a file the guest's memory is made from."""
HOSTFWD_RE = re.compile(r",hostfwd=[^,]*")
FSDEV_PATH_RE = re.compile(r"(^|,)path=((?:[^,]|,,)*)")
FILE_RE = re.compile(r"(^|,)file=((?:[^,]|,,)*)")
PART_RE = re.compile(r"^\.(.+)\.(\d+)\.part$")


@dataclass(frozen=True)
class SnapshotKey:
    """What must match for a restore to be correct (see the module docstring)."""

    digest: str
    """sha256 over :attr:`fields`: the snapshot's name in the store."""
    fields: dict[str, Any]


def snapshot_key(qemu: SystemQemu, argv: list[str], machine: str,
                 digests: FileDigests) -> SnapshotKey:
    """The key of a guest started with ``argv`` (the QEMU command line without rvforge's
    channels, QMP socket or ``-incoming``)."""
    stat = qemu.path.stat()
    fields: dict[str, Any] = {
        "format": FORMAT, "machine": machine,
        "qemu": {"path": str(qemu.path), "version": qemu.version, "size": stat.st_size,
                 "mtime_ns": stat.st_mtime_ns},
        "argv": normalized_argv(argv[1:], digests),
    }
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return SnapshotKey(hashlib.sha256(text.encode()).hexdigest(), fields)


def normalized_argv(args: list[str], digests: FileDigests) -> list[str]:
    """``args`` with files replaced by their digests and per-run host values neutral."""
    out: list[str] = []
    previous = ""
    for word in args:
        if previous in PATH_OPTIONS and Path(word).is_file():
            word = digests.of(Path(word))
        elif previous == "-drive":
            word = FILE_RE.sub(lambda m: m[1] + "file=" + _file_digest(m[2], digests), word)
        elif previous == "-fsdev":
            word = FSDEV_PATH_RE.sub(r"\1path=*", word)
        elif previous == "-netdev":
            word = HOSTFWD_RE.sub("", word)
        elif previous == "-L":
            word = "*"  # QEMU's data directory: firmware comes with the binary in the key
        out.append(word)
        previous = word if word.startswith("-") else ""
    return out


def _file_digest(value: str, digests: FileDigests) -> str:
    path = Path(value.replace(",,", ","))
    return digests.of(path) if path.is_file() else value


class FileDigests:
    """sha256 of files, remembered under ``directory`` against each file's identity."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def of(self, path: Path) -> str:
        st = path.stat()
        identity = f"{path.resolve()}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
        memo = self.directory / hashlib.sha256(identity.encode()).hexdigest()[:32]
        try:
            text = memo.read_text().strip()
            if re.fullmatch(r"sha256:[0-9a-f]{64}", text):
                return text
        except OSError:
            pass
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        text = f"sha256:{digest.hexdigest()}"
        if path.stat().st_mtime_ns == st.st_mtime_ns:  # not rewritten while read
            write_atomic(memo, text.encode() + b"\n")
        return text


@dataclass(frozen=True)
class Snapshot:
    """A validated snapshot in the store."""

    directory: Path
    meta: dict[str, Any]

    @property
    def state(self) -> Path:
        return self.directory / STATE

    def console(self) -> bytes:
        """The boot's console up to the save (empty if it was not kept)."""
        try:
            return (self.directory / CONSOLE).read_bytes()
        except OSError:
            return b""


class SnapshotStore:
    """The snapshots under ``<cache>/qemu/snapshots`` (see the module docstring)."""

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx
        self.root = ctx.cache("qemu", "snapshots")
        self.digests = FileDigests(ctx.cache("qemu", "digests"))

    def state_path(self, key: SnapshotKey) -> Path:
        """Where the state of ``key``'s snapshot is (or would be) once committed."""
        return self.root / key.digest / STATE

    def find(self, key: SnapshotKey) -> Snapshot | None:
        """The snapshot for ``key``, if there is a whole one (anything else is logged in
        one line, removed, and ``None``)."""
        directory = self.root / key.digest
        if not directory.exists():
            return None
        problem = _problem(directory, key)
        if problem:
            self.ctx.log.warning(f"snapshot not used ({problem}); booting cold",
                                 snapshot=str(directory))
            self.discard(directory)
            return None
        meta = json.loads((directory / META).read_text())
        os.utime(directory / META)  # least recently *used* goes first
        return Snapshot(directory, meta)

    def discard(self, directory: Path) -> None:
        """Remove a snapshot (one that failed to restore, or a damaged one)."""
        shutil.rmtree(directory, ignore_errors=True)

    def new_state(self, key: SnapshotKey) -> Path:
        """A temporary directory for a snapshot being written (:meth:`commit` publishes
        it); its ``state.zst`` is where QEMU writes."""
        self._sweep()
        temp = self.root / f".{key.digest}.{os.getpid()}.part"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        return temp / STATE

    def commit(self, key: SnapshotKey, state: Path, console: Path | None = None,
               **facts: Any) -> Path | None:
        """Publish the snapshot written to ``state`` (from :meth:`new_state`) with the boot's
        ``console`` log; another process that published the same key first wins. Then
        enforce the size cap."""
        temp = state.parent
        if not state.is_file() or state.read_bytes()[:4] != ZSTD_MAGIC:
            shutil.rmtree(temp, ignore_errors=True)
            return None
        if console is not None and console.is_file():
            shutil.copyfile(console, temp / CONSOLE)
        meta = {"format": FORMAT, "key": key.digest, "fields": key.fields,
                "state_bytes": state.stat().st_size, "created": time.time(), **facts}
        (temp / META).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        final = self.root / key.digest
        try:
            os.rename(temp, final)
        except OSError:  # a parallel first run published it already
            shutil.rmtree(temp, ignore_errors=True)
            return final if final.is_dir() else None
        self.evict(keep=final)
        return final

    def cap_bytes(self) -> int:
        value = os.environ.get(CAP_VARIABLE, "")
        return int(value) << 20 if value.isdigit() else DEFAULT_CAP_BYTES

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used snapshots until the store fits its cap
        (``keep``, the one just written, stays)."""
        entries = []
        for directory in self.root.iterdir():
            if directory.name.startswith(".") or not directory.is_dir():
                continue
            size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
            try:
                used = (directory / META).stat().st_mtime
            except FileNotFoundError:
                used = 0.0
            entries.append((used, size, directory))
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, directory in sorted(entries, key=lambda e: e[0]):
            if total <= self.cap_bytes():
                break
            if directory == keep:
                continue
            self.discard(directory)
            total -= size
            removed.append(directory)
        if removed:
            self.ctx.log.info("removed least recently used snapshots",
                              count=len(removed), cap_mb=self.cap_bytes() >> 20)
        return removed

    def _sweep(self) -> None:
        """Remove temporaries left by processes that died while saving."""
        for temp in self.root.glob(".*.part"):
            match = PART_RE.match(temp.name)
            if match and not Path(f"/proc/{match[2]}").exists():
                shutil.rmtree(temp, ignore_errors=True)


def _problem(directory: Path, key: SnapshotKey) -> str:
    """Why the snapshot in ``directory`` cannot be restored for ``key`` ('' if it can)."""
    try:
        meta = json.loads((directory / META).read_text())
    except FileNotFoundError:
        return "its metadata is missing"
    except (OSError, ValueError, UnicodeDecodeError):
        return "its metadata is unreadable"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return "it was written by another rvforge version"
    if meta.get("key") != key.digest:
        return "it belongs to another configuration"
    try:
        size = (directory / STATE).stat().st_size
        with open(directory / STATE, "rb") as stream:
            magic = stream.read(4)
    except OSError:
        return "its state file is missing"
    if size != meta.get("state_bytes"):
        return f"its state file is truncated ({size} of {meta.get('state_bytes')} bytes)"
    if magic != ZSTD_MAGIC:
        return "its state file is not zstd data"
    return ""
