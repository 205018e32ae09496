"""A running ``qemu-system-riscv64`` and rvforge's channels to it.

The serial console and three virtio-serial ports (see
:mod:`rvforge.protocol`) are QEMU ``socket`` chardevs that connect to Unix
sockets the launcher listens on, so everything the guest says arrives on one selector
loop: console bytes go to the log and the watcher, ``rvforge.out``/``rvforge.err`` to the
caller, ``rvforge.ctl`` carries requests and exit statuses.

QEMU runs in its own process group with ``PR_SET_PDEATHSIG``: :meth:`Guest.kill` (called
on every exit path, Ctrl-C included) kills the whole group, and if rvforge itself dies
the kernel kills QEMU.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from rvforge import protocol
from rvforge.protocol import CONTROL_PORT, STDERR_PORT, STDOUT_PORT

from rvforge_qemu.console import ConsoleWatch
from rvforge_qemu.tools import qemu_reason, startup_error

CHANNELS = ("console", "ctl", "out", "err")
PORT_NAMES = {"ctl": CONTROL_PORT, "out": STDOUT_PORT, "err": STDERR_PORT}
STDERR_FILE = "qemu.stderr"
SHUTDOWN_GRACE = 15.0
"""Seconds a guest gets to power off after ``POWEROFF`` before it is killed."""


class GuestFailure(Exception):
    """The guest did not do what was asked (timeout, panic, QEMU exited); ``str`` is the
    one-sentence reason."""


class CommandTimedOut(GuestFailure):
    """The guest booted and ran the command, which was still running at the deadline."""


def channel_args(socket_dir: Path) -> list[str]:
    """QEMU arguments wiring the console and the three ports to sockets in
    ``socket_dir``."""
    args = ["-chardev", f"socket,id=console,path={socket_dir / 'console'}",
            "-serial", "chardev:console",
            "-device", "virtio-serial-pci,id=rvforge-serial"]
    for nr, name in enumerate(("ctl", "out", "err"), start=1):
        args += ["-chardev", f"socket,id={name},path={socket_dir / name}",
                 "-device", (f"virtserialport,bus=rvforge-serial.0,nr={nr},chardev={name},"
                             f"name={PORT_NAMES[name]}")]
    return args


@dataclass
class Launched:
    """A QEMU just started by :func:`launch`: its channels' listeners bound, their
    connections not yet accepted (:meth:`Guest.start` accepts them)."""

    argv: list[str]
    process: subprocess.Popen[bytes]
    listeners: dict[str, socket.socket]
    started: float
    """``time.monotonic()`` at the start."""

    def close_listeners(self) -> None:
        for listener in self.listeners.values():
            listener.close()

    def kill(self) -> None:
        """Kill QEMU's process group and close the listeners (nobody took the guest)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.close_listeners()


def launch(argv: list[str], socket_dir: Path) -> Launched:
    """Start QEMU on ``argv`` (which holds :func:`channel_args` of ``socket_dir``) after
    binding the channels' sockets it connects to; its output goes to
    ``socket_dir/qemu.stderr``. QEMU runs in its own process group and dies with the
    thread that started it (``PR_SET_PDEATHSIG``)."""
    listeners = {}
    for name in CHANNELS:
        path = socket_dir / name
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.settimeout(0.2)
        listeners[name] = listener
    started = time.monotonic()
    with open(socket_dir / STDERR_FILE, "wb") as stderr:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr,
                                   stderr=stderr, start_new_session=True,
                                   preexec_fn=die_with_parent)
    return Launched(argv, process, listeners, started)


class Guest:
    """Start QEMU with :func:`channel_args` already in ``argv``, then talk to the guest.

    :param argv: the whole QEMU command line.
    :param socket_dir: where the channel sockets are (short path: Unix socket names are
        limited to 107 bytes).
    :param console_log: where the console is kept.
    :param label: names the VM in QEMU's start-up errors (``machine 'qemu-virt'``).
    :param echo: also write the console here as it arrives (``--console``).
    :param adopt: called with QEMU's process as soon as it starts (a
        :class:`rvforge.Cancellation` kills it from another thread).
    """

    def __init__(self, argv: list[str], socket_dir: Path, console_log: Path,
                 label: str = "qemu-system-riscv64", *, echo: BinaryIO | None = None,
                 adopt: Callable[[subprocess.Popen[bytes]], None] | None = None) -> None:
        self.argv = argv
        self.adopt = adopt
        self.label = label
        self.socket_dir = socket_dir
        self.console = ConsoleWatch(console_log, echo)
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self._selector = selectors.DefaultSelector()
        self._conns: dict[str, socket.socket] = {}
        self._ctl = b""
        self._hello = False
        self._sinks: dict[str, Callable[[bytes], None]] = {}
        self._stderr_path = socket_dir / STDERR_FILE

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, deadline: float, *, restored: bool = False,
              launched: Launched | None = None) -> None:
        """Launch QEMU (or take ``launched``, started with this very command line) and
        accept its four connections. ``restored``: QEMU loads a saved ready state
        (``-incoming``), whose init said its hello before the save."""
        if launched is None:
            launched = launch(self.argv, self.socket_dir)
        self.process, self.started = launched.process, launched.started
        if self.adopt is not None:
            self.adopt(self.process)
        try:
            for name, listener in launched.listeners.items():
                self._conns[name] = self._accept(listener, deadline)
        finally:
            launched.close_listeners()
        for name, conn in self._conns.items():
            conn.setblocking(False)
            self._selector.register(conn, selectors.EVENT_READ, name)
        if restored:
            self._hello = self.console.ready = self.console.kernel_started = True

    def _accept(self, listener: socket.socket, deadline: float) -> socket.socket:
        while True:
            try:
                return listener.accept()[0]
            except TimeoutError:
                pass
            assert self.process is not None
            if self.process.poll() is not None:
                raise startup_error(self.qemu_stderr(), self.label)
            if time.monotonic() > deadline:
                raise GuestFailure("QEMU did not open its console within the timeout")

    def alive(self) -> bool:
        """Whether QEMU has been started and still runs."""
        return self.process is not None and self.process.poll() is None

    def channel(self, name: str) -> socket.socket:
        """The connected socket of channel ``name`` (one of :data:`CHANNELS`, non-blocking),
        for a caller that serves it itself: the interactive console."""
        return self._conns[name]

    def qemu_stderr(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """Kill QEMU's process group (if still running) and close every channel."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._selector.close()
        self.console.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    # -- protocol ----------------------------------------------------------------------

    def wait_kernel(self, deadline: float) -> bool:
        """Wait until the kernel prints its first line; ``False`` if it has not by
        ``deadline`` while QEMU still runs (a stalled start). QEMU exiting or a panic is
        left for :meth:`wait_ready` to report."""
        try:
            self._pump(lambda: self.console.kernel_started, deadline, "the kernel's first line")
        except GuestFailure:
            return self.process is None or self.process.poll() is not None \
                or self.console.panic is not None
        return True

    def wait_ready(self, deadline: float) -> float:
        """Wait for the console's ready marker and the init's hello on ``rvforge.ctl``;
        return the seconds from launch to the marker."""
        marker_at: list[float] = []

        def ready() -> bool:
            if self.console.ready and not marker_at:
                marker_at.append(time.monotonic() - self.started)
            return self.console.ready and self._hello

        try:
            self._pump(ready, deadline, "the ready marker")
        except GuestFailure as failure:
            if self.console.ready:  # the init runs, but never answered on its port
                raise GuestFailure(
                    f"{failure}: the init printed the marker but never answered on the "
                    f"{CONTROL_PORT} virtio-serial port (does the kernel have VIRTIO_PCI and "
                    "VIRTIO_CONSOLE built in, and is the image's /init rvforge's?)") from None
            raise
        return marker_at[0]

    def execute(self, script: str, deadline: float, stdout: Callable[[bytes], None],
                stderr: Callable[[bytes], None]) -> int:
        """Run ``script`` with ``sh`` in the guest; output goes to the two callbacks as it
        arrives. Returns the exit status."""
        token = "RVFORGE-END-" + secrets.token_hex(8)
        self._sinks = {"out": stdout, "err": stderr}
        self._send(protocol.run_request(token, script))
        status: list[int] = []

        def finished() -> bool:
            while not status and (line := self._ctl_line()) is not None:
                if (code := protocol.parse_exit(line)) is not None:
                    status.append(code)
            return bool(status)

        started = time.monotonic()
        try:
            self._pump(finished, deadline, "the command's exit status")
        except GuestFailure:
            if time.monotonic() <= deadline or self.console.panic:
                raise
            raise CommandTimedOut(f"the command ran for {time.monotonic() - started:.0f} s "
                                  "and was stopped") from None
        self._drain()
        return status[0]

    def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Ask the guest to power off; kill it if it has not within ``grace`` seconds."""
        assert self.process is not None
        try:
            self._send(f"{protocol.POWEROFF_REQUEST}\n".encode())
            self._pump(lambda: False, time.monotonic() + grace, "power-off", until_exit=True)
        except (GuestFailure, OSError):
            pass
        self.kill()

    # -- plumbing ----------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        conn = self._conns["ctl"]
        conn.setblocking(True)
        try:
            conn.sendall(data)
        finally:
            conn.setblocking(False)

    def _ctl_line(self) -> str | None:
        if b"\n" not in self._ctl:
            return None
        line, self._ctl = self._ctl.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def _pump(self, done: Callable[[], bool], deadline: float, waiting_for: str, *,
              until_exit: bool = False) -> None:
        assert self.process is not None
        while not done():
            if self.console.panic and not until_exit:
                raise GuestFailure(f"kernel panic: {self.console.panic}")
            now = time.monotonic()
            if now > deadline:
                raise GuestFailure(f"timed out waiting for {waiting_for}")
            if self._selector.get_map():
                events = self._selector.select(min(deadline - now, 0.5))
            else:  # every channel is closed: QEMU is exiting
                events = []
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=min(deadline - now, 0.5))
            for key, _ in events:
                self._read(key.data, key.fileobj)  # type: ignore[arg-type]
            if not events and self.process.poll() is not None:
                if until_exit:
                    return
                self._exited(waiting_for)

    def _exited(self, waiting_for: str) -> None:
        """QEMU is gone: a start-up refusal (nothing on the console, an error on its
        stderr) is QEMU's error; anything later is a guest failure."""
        assert self.process is not None
        stderr = self.qemu_stderr()
        refused = qemu_reason(stderr) if "qemu-system-riscv64: " in stderr else ""
        if refused and not self.console.seen_output:
            raise startup_error(stderr, self.label)
        because = f": {refused}" if refused else ""
        raise GuestFailure(f"QEMU exited (status {self.process.returncode}) before "
                           f"{waiting_for}{because}")

    def _read(self, name: str, conn: socket.socket) -> None:
        try:
            data = conn.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._selector.unregister(conn)
            return
        if name == "console":
            self.console.feed(data)
        elif name == "ctl":
            self._ctl += data
            if not self._hello and b"\n" in self._ctl:
                hello = self._ctl_line()
                self._hello = hello is not None and hello.startswith(protocol.READY_MARKER)
        elif name in self._sinks:
            self._sinks[name](data)

    def _drain(self) -> None:
        """Read what is already buffered on the output channels (the guest wrote it all
        before the exit status; see the init protocol)."""
        for name in ("out", "err", "console"):
            conn = self._conns.get(name)
            while conn is not None:
                try:
                    data = conn.recv(1 << 16)
                except BlockingIOError:
                    break
                if not data:
                    break
                if name == "console":
                    self.console.feed(data)
                else:
                    self._sinks[name](data)


def die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
