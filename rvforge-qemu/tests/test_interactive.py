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
         close_guest: bool, ctl: bytes | None = None) -> tuple[str, bytes, bytes]:
    """Run the pump with ``typed`` on stdin, ``guest`` from the console and ``ctl`` (if
    given) from the guest's control port; return how it ended, what reached the console and
    what reached stdout."""
    host, vm = socket.socketpair()
    ctl_host, ctl_vm = socket.socketpair()
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    monkeypatch.setattr(interactive.sys, "stdin", Fd(stdin_r))
    vm.sendall(guest)
    if close_guest:
        vm.shutdown(socket.SHUT_WR)
    if ctl is not None:
        ctl_vm.sendall(ctl)
        ctl_vm.shutdown(socket.SHUT_WR)  # what the guest says, then QEMU gone
    os.write(stdin_w, typed)
    os.close(stdin_w)
    with open(stdout_w, "wb", closefd=False) as shown_to:
        watch = ConsoleWatch(tmp_path / "console.log", shown_to)
        left = interactive._copy(host, watch, ctl_host if ctl is not None else None)
        watch.close()
    host.close()
    ctl_host.close()
    ctl_vm.close()
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
    assert left == "escape"
    assert received == b"ls\r\x03"  # Ctrl-C travels as a byte to the guest's tty


def test_the_console_is_shown_and_logged_until_qemu_closes_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    left, _, shown = pump(monkeypatch, tmp_path, b"", b"login: \r\nreboot: Power down\r\n",
                          close_guest=True)
    assert left == "closed"
    assert shown == b"login: \r\nreboot: Power down\r\n"
    assert (tmp_path / "console.log").read_bytes() == shown


def test_the_shell_of_a_run_request_exiting_ends_the_session(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the exit line may come in pieces; an unrelated line is not the end
    left, _, shown = pump(monkeypatch, tmp_path, b"", b"/ # exit\r\n", close_guest=False,
                          ctl=b"noise\nRVFORGE-EX")
    assert left == "closed"  # QEMU went away before a whole exit line came
    left, _, shown = pump(monkeypatch, tmp_path, b"", b"/ # exit\r\n", close_guest=False,
                          ctl=b"noise\nRVFORGE-EXIT 0\n")
    assert left == "exited"
    assert shown == b"/ # exit\r\n"


def test_the_shell_script_sizes_the_console_like_this_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interactive, "_terminal_size", lambda: (33, 101))
    script = interactive.shell_script()
    assert 'stty rows 33 cols 101 < "$tty"' in script
    assert "setsid -c sh -i" in script and "3>&-" in script
    monkeypatch.setattr(interactive, "_terminal_size", lambda: None)
    assert "stty" not in interactive.shell_script()
