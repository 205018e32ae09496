"""``rvforge boot --interactive``: the guest's serial console on this terminal.

Two ways in, one shell: a snapshot-capable launch (the default) boots or restores the guest
as ``rvforge run`` does (same snapshot key), saves its ready state on a cold boot, refreshes
it, and then asks the guest's ``/init`` for the shell with an ordinary ``RUN`` request
(:func:`attach`, :func:`shell_script`), so nothing the user types is ever in a snapshot and
a restored guest shows a new prompt. With ``--no-snapshot`` (or a gdbstub) the console is
the user's from power-on (:func:`run_console`): ``/init`` starts the shell itself
(``rvforge.shell=1`` on the kernel command line, :func:`interactive_words`), which is also
the way to watch an image that never reaches rvforge's ready marker.

Either way the shell runs in a new session whose controlling terminal is the console's tty
(``setsid -c``), sized like this terminal, so job control works and Ctrl-C interrupts the
guest's foreground process. This side puts the terminal in raw mode and copies bytes both
ways between it and QEMU's serial port (a Unix socket); :data:`ESCAPE` (Ctrl-]) leaves at
once, killing the VM. The terminal's settings are restored on every way out (guest
power-off, Ctrl-], QEMU failing, an exception or SIGTERM turned into one).
"""

from __future__ import annotations

import contextlib
import os
import secrets
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
from typing import Literal

from rvforge import BootResult
from rvforge.protocol import COLS_ARGUMENT, ROWS_ARGUMENT, SHELL_ARGUMENT, parse_exit, run_request

from rvforge_qemu.console import ConsoleWatch
from rvforge_qemu.guest import SHUTDOWN_GRACE, Guest, die_with_parent
from rvforge_qemu.tools import startup_error

ESCAPE = b"\x1d"
"""Ctrl-]: leave the console (as telnet's escape); the VM is killed."""
ESCAPE_NAME = "Ctrl-]"
CONNECT_TIMEOUT = 60.0
"""Seconds QEMU gets to connect to the console socket."""
SHELL = r"""tty=/dev/console
active=
read -r active < /sys/class/tty/console/active 2>/dev/null
[ -n "$active" ] && [ -c "/dev/${active##* }" ] && tty=/dev/${active##* }
%(size)s
if command -v setsid >/dev/null 2>&1; then
    setsid -c sh -i <"$tty" >"$tty" 2>&1 3>&-
else
    sh -i <"$tty" >"$tty" 2>&1 3>&-
fi
"""
"""What ``/init``'s own shell start does (``rvforge.shell=1``), as a ``RUN`` request: the
console's tty becomes the shell's controlling terminal; the control port (fd 3) stays
rvforge's."""

Ending = Literal["escape", "closed", "exited"]
"""How a console session ended: the user left with :data:`ESCAPE`, QEMU closed the
console (the guest powered off), or the shell a ``RUN`` request started exited."""


def interactive_words() -> list[str]:
    """Kernel command-line words asking ``/init`` for a shell sized like this terminal."""
    size = _terminal_size()
    if size is None:
        return [SHELL_ARGUMENT]
    return [SHELL_ARGUMENT, f"{ROWS_ARGUMENT}{size[0]}", f"{COLS_ARGUMENT}{size[1]}"]


def shell_script() -> str:
    """The ``RUN`` request's script starting a shell on the console sized like this
    terminal (see :data:`SHELL`)."""
    size = _terminal_size()
    stty = f'stty rows {size[0]} cols {size[1]} < "$tty" 2>/dev/null' if size else ":"
    return SHELL % {"size": stty}


def _terminal_size() -> tuple[int, int] | None:
    """This terminal's rows and columns, if stdin is one."""
    try:
        size = os.get_terminal_size(sys.stdin.fileno())
    except (OSError, ValueError):
        return None
    return (size.lines, size.columns) if size.lines and size.columns else None


def attach(guest: Guest, started: float) -> BootResult:
    """Start a shell on the ready ``guest``'s console (a ``RUN`` request) and give the
    console to this terminal until the shell exits (the guest is then powered off, its
    console still shown), the guest powers off, or the user types :data:`ESCAPE` (the VM
    is killed). ``started``: when the command began (the result's seconds count from it).
    """
    console, ctl = guest.channel("console"), guest.channel("ctl")
    token = "RVFORGE-END-" + secrets.token_hex(8)
    with _blocking(console, ctl):
        ctl.sendall(run_request(token, shell_script()))
        with _raw_terminal():
            ending = _copy(console, guest.console, ctl)
    if ending == "exited":
        guest.shutdown()
    elif ending == "escape":
        guest.kill()
    elif guest.process is not None:  # the guest powered off: QEMU is exiting
        with contextlib.suppress(subprocess.TimeoutExpired):
            guest.process.wait(timeout=SHUTDOWN_GRACE)
        guest.kill()
    result = BootResult(ok=True, seconds=time.monotonic() - started,
                        console_log=guest.console.log_path)
    if ending == "escape":
        result.reason = f"left the console with {ESCAPE_NAME}"
    elif ending == "exited":
        result.reason = "the shell exited; the guest was powered off"
    else:
        status = guest.process.returncode if guest.process is not None else None
        result.ok, result.reason = status == 0, f"QEMU exited with status {status}"
    return result


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
            watch = ConsoleWatch(console_log, sys.stdout.buffer)
            try:
                conn = _accept(listener, process, stderr_path, label)
                with conn, _raw_terminal():
                    left = _copy(conn, watch)
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
                watch.close()
    seconds = time.monotonic() - start
    if left == "escape":
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


def _copy(conn: socket.socket, console: ConsoleWatch, ctl: socket.socket | None = None
          ) -> Ending:
    """Copy bytes between the terminal and the console (shown and logged by ``console``)
    until the console closes, the user types :data:`ESCAPE`, or ``ctl`` (the guest's
    control port) says the ``RUN`` request's shell exited."""
    stdin = sys.stdin.fileno()
    sources = [conn.fileno(), stdin, *([ctl.fileno()] if ctl is not None else [])]
    answer = b""
    while True:
        ready, _, _ = select.select(sources, [], [])
        if conn.fileno() in ready:
            data = conn.recv(1 << 16)
            if not data:
                return "closed"
            console.feed(data)
        if ctl is not None and ctl.fileno() in ready:
            data = ctl.recv(4096)
            if not data:
                return "closed"
            answer += data
            if any(parse_exit(line.decode("utf-8", "replace")) is not None
                   for line in answer.split(b"\n")[:-1]):
                return "exited"
        if stdin in ready:
            data = os.read(stdin, 1024)
            if not data:  # stdin closed: keep showing the console
                sources.remove(stdin)
                continue
            before, escape, _ = data.partition(ESCAPE)
            if before:
                conn.sendall(before)
            if escape:
                return "escape"


@contextlib.contextmanager
def _blocking(*conns: socket.socket) -> Iterator[None]:
    """The guest's channels blocking while the block runs (a paste larger than the socket
    buffer waits for the guest instead of failing), non-blocking again after."""
    for conn in conns:
        conn.setblocking(True)
    try:
        yield
    finally:
        for conn in conns:
            conn.setblocking(False)
