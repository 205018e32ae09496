"""The interactive console's byte pump (the whole console, through a pty and a real
guest, is tested in tests/test_boot.py)."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

from rvforge_qemu import interactive
from rvforge_qemu.console import ConsoleWatch


class Fd(io.RawIOBase):
    """Something with a ``fileno`` standing in for ``sys.stdin``/``sys.stdout``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def pump(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, typed: bytes, guest: bytes,
         close_guest: bool) -> tuple[bool, bytes, bytes]:
    """Run the pump with ``typed`` on stdin and ``guest`` from the console; return what
    it returned, what reached the console and what reached stdout."""
    host, vm = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    monkeypatch.setattr(interactive.sys, "stdin", Fd(stdin_r))
    monkeypatch.setattr(interactive.sys, "stdout", Fd(stdout_w))
    vm.sendall(guest)
    if close_guest:
        vm.shutdown(socket.SHUT_WR)
    os.write(stdin_w, typed)
    os.close(stdin_w)
    left = interactive._copy(host, ConsoleWatch(tmp_path / "console.log"))
    host.close()
    os.close(stdout_w)
    vm.settimeout(5)
    received = b""
    while data := vm.recv(4096):
        received += data
    shown = os.read(stdout_r, 65536)
    os.close(stdin_r)
    os.close(stdout_r)
    return left, received, shown


def test_ctrl_close_bracket_leaves_and_is_not_sent(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    left, received, _ = pump(monkeypatch, tmp_path, b"ls\r\x03\x1dnot sent", b"",
                             close_guest=False)
    assert left is True
    assert received == b"ls\r\x03"  # Ctrl-C travels as a byte to the guest's tty


def test_the_console_is_shown_and_logged_until_qemu_closes_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    left, _, shown = pump(monkeypatch, tmp_path, b"", b"login: \r\nreboot: Power down\r\n",
                          close_guest=True)
    assert left is False
    assert shown == b"login: \r\nreboot: Power down\r\n"
    assert (tmp_path / "console.log").read_bytes() == shown
