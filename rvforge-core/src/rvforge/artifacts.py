"""What packers produce and launchers report."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

EXT4_MAGIC_OFFSET = 1024 + 0x38
"""Where the superblock's ``s_magic`` lies in an ext2/3/4 filesystem."""
EXT4_MAGIC = b"\x53\xef"


@dataclass(frozen=True, slots=True)
class Artifact:
    """A packed image on the host.

    :param path: where it is.
    :param kind: ``initramfs`` (cpio), ``disk`` (a filesystem image) or ``tar``.
    :param format: the format with its compression: ``cpio.gz``, ``cpio.zst``, ``tar``,
        ``ext4``...
    :param sha256: hex digest of the file.
    :param size: bytes on disk.
    """

    path: Path
    kind: str
    format: str
    sha256: str = ""
    size: int = 0

    @classmethod
    def from_file(cls, path: Path, kind: str, format: str) -> Artifact:
        """Describe an existing file, hashing it."""
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return cls(Path(path), kind, format, digest.hexdigest(), path.stat().st_size)

    @classmethod
    def of_image(cls, path: Path) -> Artifact:
        """Describe an image file for a launcher, its kind judged by its content: a cpio
        archive (any compression) is an ``initramfs``, an ext4 filesystem a ``disk``."""
        from rvforge.errors import UsageError
        from rvforge.formats.sniff import sniff

        path = Path(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such image file")
        size = path.stat().st_size
        kind = sniff(path)
        if kind == "cpio":
            return cls(path, "initramfs", "cpio", size=size)
        if kind == "tar":
            return cls(path, "tar", "tar", size=size)
        with open(path, "rb") as stream:
            stream.seek(EXT4_MAGIC_OFFSET)
            if stream.read(2) == EXT4_MAGIC:
                return cls(path, "disk", "ext4", size=size)
        raise UsageError(f"{path}: not an initramfs (cpio) or ext4 image rvforge can boot")


@dataclass(slots=True)
class BootResult:
    """The outcome of booting an artifact.

    :param ok: the ready marker was seen and the guest shut down cleanly.
    :param reason: why not, in one sentence (empty when ``ok``).
    :param seconds: wall time from launch to the marker (or to the failure).
    :param console_log: where the full serial console was kept, if anywhere.
    :param console_tail: the last lines of the console, for error messages.
    :param diagnosis: explanations found in the console (illegal instructions, panics).
    """

    ok: bool
    reason: str = ""
    seconds: float = 0.0
    console_log: Path | None = None
    console_tail: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)


@dataclass(slots=True, repr=False)
class RunResult(BootResult):
    """The outcome of running one command in a booted guest.

    ``ok`` (inherited) says the guest booted and the command ran to its end — *whatever its
    exit status*: a command killed by ``SIGILL`` is ``ok`` with status 132. Ask
    :attr:`succeeded` for "it exited 0", :attr:`finished` for ``ok`` by its meaning here.

    :param status: the command's exit status in the guest (``None`` if it never finished);
        the guest's shell reports a command killed by signal N as 128 + N.
    :param stdout: what the command wrote to its standard output.
    :param stderr: what it wrote to its standard error.
    :param booted: the guest reached the ready marker: a failure after it (``reason``) is
        the command's, not the boot's.
    """

    status: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    booted: bool = False

    @property
    def finished(self) -> bool:
        """The command ran to its end (its status is known); the same as ``ok``."""
        return self.ok and self.status is not None

    @property
    def succeeded(self) -> bool:
        """The command finished with status 0."""
        return self.finished and self.status == 0

    @property
    def signal(self) -> int | None:
        """The signal that killed the command (status 128 + N), if one did."""
        if self.status is not None and 128 < self.status < 128 + 65:
            return self.status - 128
        return None

    def __repr__(self) -> str:
        status = repr(self.status)
        if (number := self.signal) is not None:
            import signal

            try:
                status += f" ({signal.Signals(number).name})"
            except ValueError:
                status += f" (signal {number})"
        fields = [f"status={status}", f"succeeded={self.succeeded}",
                  f"finished={self.finished}", f"seconds={self.seconds:.2f}",
                  f"stdout={self.stdout!r}", f"stderr={self.stderr!r}"]
        fields += [f"{name}={getattr(self, name)!r}" for name in ("reason", "diagnosis")
                   if getattr(self, name)]
        return f"RunResult({', '.join(fields)})"
