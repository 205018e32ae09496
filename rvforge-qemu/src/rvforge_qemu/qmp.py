"""A small QMP client: QEMU's JSON machine protocol on a Unix socket (``-qmp unix:PATH``).

Only what saving a guest needs: the greeting and ``qmp_capabilities``, one command at a time
(``stop``, ``cont``, ``migrate``, ``query-migrate``, ``query-status``), asynchronous events
skipped. QEMU's answers are data: a malformed or unexpected reply, an ``error`` reply, a
closed socket or a deadline are all a :class:`QmpError` carrying one sentence, never a
traceback.
"""

from __future__ import annotations

import json
import shlex
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

MAX_REPLY = 1 << 20
"""A QMP line longer than this is not QEMU talking."""


class QmpError(Exception):
    """A QMP exchange failed; ``str`` says what in one sentence."""


def qmp_args(path: Path) -> list[str]:
    """QEMU arguments opening a QMP server on the Unix socket ``path`` (QEMU listens,
    does not wait for the client)."""
    return ["-qmp", f"unix:{path},server=on,wait=off"]


class Qmp:
    """One QMP connection (``with`` block closes it).

    :param path: QEMU's QMP socket.
    :param deadline: ``time.monotonic()`` value by which QEMU must have answered.
    :param alive: whether QEMU still runs (a QEMU that exited leaves its socket file,
        which then refuses connections: without it, the connect waits for ``deadline``).
    """

    def __init__(self, path: Path, deadline: float,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.path = path
        self._buffer = b""
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:  # QEMU creates the socket a moment after it starts
            try:
                self._sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if not alive():
                    self._sock.close()
                    raise QmpError("QEMU exited") from None
                if time.monotonic() > deadline:
                    self._sock.close()
                    raise QmpError(f"QEMU's QMP socket {path} did not open in time") from None
                time.sleep(0.005)
        try:
            greeting = self._message(deadline)
            if "QMP" not in greeting:
                raise QmpError(f"{path}: not a QMP greeting: {_short(greeting)}")
            self.command("qmp_capabilities", deadline=deadline)
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def command(self, name: str, arguments: dict[str, Any] | None = None, *,
                deadline: float) -> Any:
        """Run ``name`` and return its ``return`` value."""
        request: dict[str, Any] = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as error:
            raise QmpError(f"QMP {name}: QEMU closed the QMP connection ({error})") from None
        while True:
            reply = self._message(deadline)
            if "event" in reply:
                continue
            if "error" in reply:
                failure = reply["error"]
                text = failure.get("desc") if isinstance(failure, dict) else failure
                raise QmpError(f"QMP {name}: {text}")
            if "return" not in reply:
                raise QmpError(f"QMP {name}: unexpected reply {_short(reply)}")
            return reply["return"]

    def status(self, deadline: float) -> str:
        """The VM's run state (``running``, ``paused``, ``inmigrate``, ``postmigrate``…)."""
        reply = self.command("query-status", deadline=deadline)
        return str(reply.get("status", "")) if isinstance(reply, dict) else ""

    def save(self, dest: Path, deadline: float, *, level: int = 3) -> None:
        """Stop the VM and write its whole state to ``dest``, compressed with ``zstd``.
        The VM stays stopped (``cont`` resumes it)."""
        self.command("stop", deadline=deadline)
        command = f"zstd -q -f -{level} -o {shlex.quote(str(dest))}"
        self.command("migrate", {"uri": f"exec:{command}"}, deadline=deadline)
        while True:
            info = self.command("query-migrate", deadline=deadline)
            status = info.get("status") if isinstance(info, dict) else None
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                why = info.get("error-desc", status)
                raise QmpError(f"saving the guest failed: {why}")
            if time.monotonic() > deadline:
                raise QmpError("saving the guest did not finish in time")
            time.sleep(0.02)

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QmpError("QEMU did not answer on QMP in time")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as error:
                raise QmpError(f"QMP connection lost ({error})") from None
            if not data:
                raise QmpError("QEMU closed the QMP connection")
            self._buffer += data
            if len(self._buffer) > MAX_REPLY:
                raise QmpError("QEMU's QMP reply is too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise QmpError(f"not JSON on QMP: {_short(line)}") from None
        if not isinstance(message, dict):
            raise QmpError(f"not a QMP message: {_short(message)}")
        return message


def incoming_args(snapshot: Path) -> list[str]:
    """QEMU arguments restoring the state ``snapshot`` (written by :meth:`Qmp.save`)."""
    return ["-incoming", f"exec:zstd -q -dc {shlex.quote(str(snapshot))}"]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
