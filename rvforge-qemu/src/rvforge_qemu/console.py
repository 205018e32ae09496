"""Watching a guest's serial console: the log file, the last lines, the ready marker,
kernel panics, and the kernel's reports of illegal instructions."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rvforge.protocol import READY_MARKER

TAIL_LINES = 25
PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")
SIGILL_RE = re.compile(
    r"(?P<comm>\S+)\[(?P<pid>[0-9]+)\]: unhandled signal 4 code (?P<code>0x[0-9a-f]+) "
    r"at (?P<pc>0x[0-9a-f]+)(?: in (?P<file>[^\[\s]+)\[(?P<offset>[0-9a-f]+),)?"
)
KERNEL_LINE_RE = re.compile(r"^\[\s*[0-9]+\.[0-9]+\] ")
"""A printk line (``[    0.000000] Linux version ...``): the kernel is running."""
BADADDR_RE = re.compile(r"badaddr: (?P<word>[0-9a-f]+)")
SETUP_ERROR_RE = re.compile(r"^(rvforge-setup: .* failed|rvforge: cannot .*)$")
"""What rvforge's ``/init`` and setup program print when a share, a module or the network
could not be set up."""
KEEP_LOGS = 20
"""Console logs kept per image and machine (older ones are removed by the next boot)."""
KEEP_SECONDS = 3600.0
"""Logs younger than this are never removed (a parallel boot may still write them)."""


def new_log_path(directory: Path, stem: str) -> Path:
    """A console log name no other boot uses (``STEM.<time>-<pid>-<random>.log``:
    pytest-xdist workers booting same-named images must not share one), after removing
    the oldest logs of ``stem`` beyond :data:`KEEP_LOGS`. ``stem`` (an image and a machine
    name) becomes one file-name component: ``/``, ``..`` and glob characters are replaced."""
    stem = _UNSAFE.sub("_", stem).lstrip(".") or "console"
    old = sorted(directory.glob(f"{stem}.*.log"), key=_mtime, reverse=True)
    for path in old[KEEP_LOGS - 1:]:
        if time.time() - _mtime(path) > KEEP_SECONDS:
            path.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return directory / f"{stem}.{stamp}-{os.getpid()}-{secrets.token_hex(3)}.log"


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]|\.\.")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass
class IllegalInstruction:
    """One ``unhandled signal 4`` report: process name, pid, pc, the mapped file the pc
    was in and its offset there, and the faulting instruction word (``badaddr``)."""

    comm: str
    pid: int
    pc: int
    file: str | None
    offset: int | None
    word: int | None = None


class ConsoleWatch:
    """Consumes console bytes: writes them to ``log`` (and ``echo``, if given), keeps the
    tail, finds events."""

    def __init__(self, log_path: Path, echo: BinaryIO | None = None) -> None:
        self.log_path = log_path
        self._echo = echo
        self._log: BinaryIO = open(log_path, "wb")
        self._partial = b""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.ready = False
        self.kernel_started = False
        self.panic: str | None = None
        self.setup_errors: list[str] = []
        self.sigills: list[IllegalInstruction] = []

    @property
    def seen_output(self) -> bool:
        """Whether the console has said anything yet."""
        return self._log.tell() > 0

    def feed(self, data: bytes) -> None:
        try:
            self._log.write(data)
            self._log.flush()
        except OSError as error:  # a full disk (or --console-log /dev/full): name the log
            raise OSError(error.errno, error.strerror, str(self.log_path)) from None
        if self._echo is not None:
            self._echo.write(data)
            self._echo.flush()
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").rstrip("\r"))
        if READY_MARKER.encode() in self._partial:  # the marker line may lack its newline
            self.ready = True

    def replay(self, earlier: bytes, note: str) -> None:
        """Start the log and the tail with ``earlier`` console output (a restored guest's
        boot, kept with its snapshot) and a ``note`` line, without finding events in it:
        its faults and panics belong to that boot, not to this run."""
        text = earlier if earlier.endswith(b"\n") or not earlier else earlier + b"\n"
        self._log.write(text + note.encode() + b"\n")
        self._log.flush()
        for raw in text.split(b"\n")[:-1]:
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\r"))
        self.tail.append(note)

    def close(self) -> None:
        if self._partial:
            self._line(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        try:
            self._log.close()
        except OSError as error:  # the last flush: name the log, as feed() does
            raise OSError(error.errno, error.strerror, str(self.log_path)) from None

    def lines(self) -> list[str]:
        """The last console lines, with a trailing partial line."""
        extra = [self._partial.decode("utf-8", "replace")] if self._partial.strip() else []
        return [*self.tail, *extra][-TAIL_LINES:]

    def _line(self, line: str) -> None:
        self.tail.append(line)
        if not self.kernel_started and KERNEL_LINE_RE.match(line):
            self.kernel_started = True
        if line.strip() == READY_MARKER:
            self.ready = True
        if SETUP_ERROR_RE.match(line.strip()):
            self.setup_errors.append(line.strip())
        if (match := PANIC_RE.search(line)) and self.panic is None:
            self.panic = match.group(1).strip() or "kernel panic"
        if match := SIGILL_RE.search(line):
            self.sigills.append(IllegalInstruction(
                match["comm"], int(match["pid"]), int(match["pc"], 16), match["file"],
                int(match["offset"], 16) if match["offset"] else None))
        elif (match := BADADDR_RE.search(line)) and self.sigills:
            last = self.sigills[-1]
            if last.word is None:
                last.word = int(match["word"], 16) & 0xFFFFFFFF
