"""The options the QEMU launchers declare: the ``rvforge boot``/``rvforge run`` flags and
the pytest plugin's ``--rvforge-*`` options are derived from these dataclasses."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rvforge import option

from rvforge_qemu.devices import GDB_DEFAULT_PORT

DEFAULT_TIMEOUT = 300.0
QEMU_HELP = ("The qemu-system-riscv64 binary (default: $RVFORGE_QEMU, else the one on PATH; "
             "a machine profile's qemu = \"...\" wins).")

_TIMEOUT_HELP = ("Seconds for the whole boot (to the ready marker) or run (to the "
                 "command's exit).")
LAVA_JOB, LAVA_RUN = "lava job", "lava run"
"""``rvforge lava job|run``: they take the options of a guest's kernel, memory, CPUs and
time that ``boot``/``run`` take (a LAVA job runs the same launch on a LAVA worker)."""
_GUEST = ("boot", "run", LAVA_JOB, LAVA_RUN)
_STREAM_HELP = ("Write the command's output to this process's stdout and stderr as it "
                "arrives (set for `rvforge run`).")


@dataclass
class LaunchOptions:
    """What the ``qemu-virt`` launcher takes (each field's ``help`` says what it does)."""

    kernel: str = option("Kernel image path or kernel source name (default: auto, "
                         "Debian's).", default="auto", metavar="PATH|NAME", commands=_GUEST)
    timeout: float = option(_TIMEOUT_HELP, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                            commands=_GUEST)
    console_log: Path | None = option(
        "Keep the serial console here (default: rvforge's cache, one file per image and "
        "machine).", default=None, metavar="PATH")
    interactive: bool = option("Attach the guest console to this terminal: a shell "
                               "(Ctrl-] leaves).", default=False, commands=("boot",))
    memory: int | None = option("RAM in MB (overrides the profile).", default=None,
                                metavar="MB", commands=_GUEST)
    cpus: int | None = option("CPUs (overrides the profile).", default=None, commands=_GUEST)
    stream: bool = option(_STREAM_HELP, default=False, commands=())
    share: list[str] = option(
        "Mount host directory HOST at GUEST in the guest (virtio-9p; writes reach the "
        "host; :ro refuses them). Repeatable.", default_factory=list,
        metavar="HOST:GUEST[:ro]")
    net: bool = option("User-mode networking: the guest is 10.0.2.15, the host's "
                       "loopback is 10.0.2.2.", default=False)
    forward: list[str] = option(
        "Forward TCP port HOSTPORT of the host's 127.0.0.1 to GUESTPORT in the guest "
        "(implies --net). Repeatable.", default_factory=list, metavar="HOSTPORT:GUESTPORT")
    append: str = option("More kernel command-line words (one shell-quoted string).",
                         default="", metavar="WORDS", commands=_GUEST)
    qemu_arg: list[str] = option("One more QEMU argument (repeat for each word).",
                                 default_factory=list, metavar="ARG")
    gdb: bool = option(f"QEMU's gdbstub on 127.0.0.1 (port {GDB_DEFAULT_PORT}, or "
                       "--gdb-port).", default=False)
    gdb_port: int | None = option("The gdbstub's port (implies --gdb).", default=None,
                                  metavar="PORT")
    halted: bool = option("With --gdb: the CPUs wait for the debugger's 'continue'.",
                          default=False)
    gdb_symbols: bool = option(
        "The kernel's symbols for gdb (implies --gdb): Debian's come from its -dbg package "
        "(about 1 GB, downloaded once; only vmlinux is kept).", default=False)
    no_check: bool = option("Boot without first checking that the image's /init (a disk's "
                            "/bin/sh) can start: present, executable, RISC-V, its "
                            "interpreter there.", default=False)
    console: bool = option("Show the serial console while it runs (on stderr).",
                           default=False)
    qemu: Path | None = option(QEMU_HELP, default=None, metavar="PATH",
                               commands=("boot", "run", "build", "machines", LAVA_RUN))
    no_snapshot: bool = option(
        "Boot cold and save nothing (by default a run restores the guest's saved ready "
        "state when one matches its configuration, and the first boot saves it).",
        default=False, commands=("boot", "run"))
    refresh: bool = option("Ask the mirror for the newest kernel now (the kernel lookup "
                           "is otherwise reused for a day).", default=False,
                           commands=("boot", "run"))

    @property
    def gdb_listen(self) -> int | None:
        """The gdbstub's port, or ``None`` for no gdbstub."""
        if self.gdb_port is not None:
            return self.gdb_port
        return GDB_DEFAULT_PORT if self.gdb or self.gdb_symbols else None


@dataclass
class UserOptions:
    """What the ``qemu-user`` launcher takes: it runs one program, with no kernel, console
    or devices, so the ``qemu-virt`` flags are not among them."""

    timeout: float = option(_TIMEOUT_HELP, default=DEFAULT_TIMEOUT, metavar="SECONDS")
    stream: bool = option(_STREAM_HELP, default=False, commands=())


def qemu_settings(binary: Path | None) -> dict[str, dict[str, object]]:
    """The ``[plugin.qemu]`` settings ``--qemu PATH`` stands for (see
    :mod:`rvforge_qemu.qemubin`)."""
    return {"qemu": {"binary": str(binary)}} if binary is not None else {}


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
