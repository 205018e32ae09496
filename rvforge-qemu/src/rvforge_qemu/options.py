"""The options both QEMU launchers take (``rvforge boot``/``rvforge run`` flags)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT = 300.0


@dataclass
class LaunchOptions:
    """:param kernel: a kernel image path, a kernel source name, or ``auto`` (Debian's).
    :param timeout: seconds for the whole boot (to the ready marker) or run (to the
        command's exit).
    :param console_log: keep the serial console here (default: rvforge's cache, one
        file per image and machine, overwritten by the next boot).
    :param interactive: attach the guest console to this terminal and give the user a
        shell (``boot`` only).
    :param memory: RAM in MB, overriding the machine profile's.
    :param cpus: virtual CPUs, overriding the machine profile's.
    :param stream: write the command's output to this process's stdout and stderr as it
        arrives (``run``), besides returning it.
    :param share: ``HOST:GUEST[:ro]`` host directories mounted in the guest (virtio-9p).
    :param net: give the guest QEMU's user-mode network (10.0.2.15; the host's loopback
        is 10.0.2.2).
    :param forward: ``HOSTPORT:GUESTPORT`` TCP forwards from the host's 127.0.0.1 (imply
        ``net``).
    :param append: more kernel command-line words (one shell-quoted string).
    :param qemu_arg: more QEMU arguments, each one word, after rvforge's.
    :param gdb: start QEMU's gdbstub on this port of 127.0.0.1.
    :param halted: with ``gdb``: the CPUs wait for the debugger's ``continue``.
    :param console: copy the serial console to this process's stderr as it arrives.
    """

    kernel: str = "auto"
    timeout: float = DEFAULT_TIMEOUT
    console_log: Path | None = None
    interactive: bool = False
    memory: int | None = None
    cpus: int | None = None
    stream: bool = False
    share: list[str] = field(default_factory=list)
    net: bool = False
    forward: list[str] = field(default_factory=list)
    append: str = ""
    qemu_arg: list[str] = field(default_factory=list)
    gdb: int | None = None
    halted: bool = False
    console: bool = False


def command_script(argv: list[str]) -> str:
    """A POSIX sh script running ``argv`` with its words quoted as given."""
    return shlex.join(argv) + "\n"


def sink(buffer: bytearray, stream: bool, err: bool) -> Callable[[bytes], None]:
    """A callback that collects output in ``buffer`` and, if ``stream``, copies it to
    this process's stdout (or stderr)."""
    target = (sys.stderr if err else sys.stdout).buffer

    def write(data: bytes) -> None:
        buffer.extend(data)
        if stream:
            target.write(data)
            target.flush()

    return write

