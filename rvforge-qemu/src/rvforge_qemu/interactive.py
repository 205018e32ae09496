"""``rvforge boot --interactive``: the guest's serial console on this terminal.

The guest's ``/init`` starts a shell in a new session whose controlling terminal is the
console's tty (``setsid -c``), sized like this terminal (``rvforge.rows=``/``rvforge.cols=``
on the kernel command line), so job control works and Ctrl-C interrupts the guest's
foreground process. This side puts the terminal in raw mode and copies bytes both ways
between it and QEMU's serial port (a Unix socket); :data:`ESCAPE` (Ctrl-]) leaves at once,
killing the VM. The terminal's settings are restored on every way out (guest power-off,
Ctrl-], QEMU failing, an exception or SIGTERM turned into one).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path

from rvforge import BootResult
from rvforge.protocol import COLS_ARGUMENT, ROWS_ARGUMENT, SHELL_ARGUMENT

from rvforge_qemu.console import ConsoleWatch
from rvforge_qemu.guest import die_with_parent
from rvforge_qemu.tools import startup_error

ESCAPE = b"\x1d"
"""Ctrl-]: leave the console (as telnet's escape); the VM is killed."""
ESCAPE_NAME = "Ctrl-]"
CONNECT_TIMEOUT = 60.0
"""Seconds QEMU gets to connect to the console socket."""


def interactive_words() -> list[str]:
    """Kernel command-line words asking ``/init`` for a shell sized like this terminal."""
    words = [SHELL_ARGUMENT]
    try:
        size = os.get_terminal_size(sys.stdin.fileno())
    except (OSError, ValueError):
        return words
    if size.lines and size.columns:
        words += [f"{ROWS_ARGUMENT}{size.lines}", f"{COLS_ARGUMENT}{size.columns}"]
    return words


def run_console(argv: list[str], console_log: Path, label: str) -> BootResult:
    """Boot ``argv`` (a QEMU command line without a serial port) with its console on this
    process's stdin and stdout until the guest powers off or the user presses
    :data:`ESCAPE`."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rvforge-vm-") as tmp:
        path = Path(tmp) / "console"
        stderr_path = Path(tmp) / "qemu.stderr"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(path))
            listener.listen(1)
            listener.settimeout(0.2)
            with open(stderr_path, "wb") as stderr:
                process = subprocess.Popen(
                    [*argv, "-chardev", f"socket,id=console,path={path}",
                     "-serial", "chardev:console"],
                    stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                    start_new_session=True, preexec_fn=die_with_parent)
            try:
                conn = _accept(listener, process, stderr_path, label)
                with conn, _raw_terminal():
                    left = _copy(conn, ConsoleWatch(console_log))
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
    seconds = time.monotonic() - start
    if left:
        return BootResult(ok=True, reason=f"left the console with {ESCAPE_NAME}",
                          seconds=seconds, console_log=console_log)
    return BootResult(ok=process.returncode == 0, seconds=seconds, console_log=console_log,
                      reason=f"QEMU exited with status {process.returncode}")


def _accept(listener: socket.socket, process: subprocess.Popen[bytes], stderr: Path,
            label: str) -> socket.socket:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            return listener.accept()[0]
        except TimeoutError:
            pass
        if process.poll() is not None:
            raise startup_error(stderr.read_text(errors="replace"), label)
        if time.monotonic() > deadline:
            raise startup_error("QEMU did not open the console", label)


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    """Raw mode on stdin while the block runs, if it is a terminal."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _copy(conn: socket.socket, console: ConsoleWatch) -> bool:
    """Copy bytes between the terminal and the console until the console closes (QEMU
    exited: ``False``) or the user types :data:`ESCAPE` (``True``)."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    sources = [conn.fileno(), stdin]
    try:
        while True:
            ready, _, _ = select.select(sources, [], [])
            if conn.fileno() in ready:
                data = conn.recv(1 << 16)
                if not data:
                    return False
                console.feed(data)
                _write_all(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 1024)
                if not data:  # stdin closed: keep showing the console
                    sources.remove(stdin)
                    continue
                before, escape, _ = data.partition(ESCAPE)
                if before:
                    conn.sendall(before)
                if escape:
                    return True
    finally:
        console.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
