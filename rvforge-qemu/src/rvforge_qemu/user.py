"""The ``qemu-user`` launcher: run one program of an image with ``qemu-riscv64``.

The image is unpacked to a scratch directory and the program runs with
``qemu-riscv64 -L <root> -cpu <the profile's CPU>``: its dynamic loader and libraries come
from the image, no binfmt handler and no root needed. It runs with this process's
environment and working directory; there is no kernel and no ``/init``, so it takes none of
``qemu-virt``'s kernel, console and device options (:class:`~rvforge_qemu.options.UserOptions`).
"""

from __future__ import annotations

import os
import posixpath
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from rvforge import (
    Artifact,
    BootResult,
    BuildContext,
    Launcher,
    Machine,
    RunResult,
    UsageError,
)

from rvforge_qemu.cpuisa import cpu_isa
from rvforge_qemu.image import unpack_image
from rvforge_qemu.options import UserOptions, sink
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.tools import QEMU_USER, find_tool

SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class QemuUser(Launcher[UserOptions]):
    name = "qemu-user"
    summary = "runs one program of an image with qemu-riscv64 -L <unpacked image>"
    Options = UserOptions
    cache_entries = {"qemu/isa/*": "qemu-probes", "qemu/binaries/*": "qemu-probes"}

    def machine_isa(self, machine: Machine, ctx: BuildContext) -> str:
        if machine.isa:
            return machine.isa
        return cpu_isa(settings_of(machine).cpu, ctx, machine=machine.name)

    def boot(self, artifact: Artifact, machine: Machine, options: UserOptions,
             ctx: BuildContext) -> BootResult:
        raise UsageError("the qemu-user launcher runs single programs and boots nothing: "
                         "use `rvforge run --launcher qemu-user IMAGE -- PROGRAM [ARGS]`")

    def run(self, artifact: Artifact, machine: Machine, argv: list[str],
            options: UserOptions, ctx: BuildContext) -> RunResult:
        qemu = find_tool(QEMU_USER)
        root = unpack_image(artifact, ctx.scratch("qemu-user", artifact.path.name), ctx)
        program = host_program(root, argv[0])
        command = [str(qemu), "-L", str(root), "-cpu", settings_of(machine).cpu,
                   "-0", argv[0], str(program), *argv[1:]]
        ctx.log.debug("running", argv=" ".join(command))
        stdout, stderr = bytearray(), bytearray()
        start = time.monotonic()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        ctx.cancellation.adopt(process)
        try:
            errors = _DropNotice(sink(stderr, options.stream, err=True))
            finished = _tee(process, sink(stdout, options.stream, err=False), errors,
                            start + options.timeout)
            errors.flush()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        result = RunResult(ok=finished, seconds=time.monotonic() - start,
                           stdout=bytes(stdout), stderr=bytes(stderr))
        if not finished:
            result.reason = f"{argv[0]} did not finish within {options.timeout:g} s"
            return result
        code = process.returncode
        result.status = 128 - code if code < 0 else code
        if code == -signal.SIGILL or b"target signal 4" in stderr:
            result.diagnosis.append(
                f"illegal instruction in {argv[0]}: the CPU of machine {machine.name!r} "
                f"({self.machine_isa(machine, ctx)}) lacks an extension it uses; "
                "`rvforge audit` names it")
        return result


def host_program(root: Path, program: str) -> Path:
    """The host path of ``program`` in the unpacked image at ``root``, following symlinks
    inside the image (``/bin/sh`` → ``/bin/busybox``) and searching the usual ``PATH``
    directories for a bare name."""
    candidates = [program] if "/" in program else [f"{d}/{program}" for d in SEARCH_PATH]
    for candidate in candidates:
        path = _resolve(root, posixpath.normpath(posixpath.join("/", candidate)))
        if path is not None and path.is_file():
            return path
    raise UsageError(f"{program}: no such program in the image")


def _resolve(root: Path, path: str, hops: int = 40) -> Path | None:
    parts = [p for p in path.split("/") if p]
    current = "/"
    while parts and hops > 0:
        current = posixpath.join(current, parts.pop(0))
        host = root / current.lstrip("/")
        if host.is_symlink():
            hops -= 1
            target = os.readlink(host)
            base = "/" if target.startswith("/") else posixpath.dirname(current)
            parts = [p for p in posixpath.normpath(posixpath.join(base, target)).split("/")
                     if p] + parts
            current = "/"
        elif not host.exists():
            return None
    return root / current.lstrip("/") if hops > 0 else None


QEMU_NOTICE = b"vector version is not specified, use the default value v1.0\n"
"""What QEMU 7.2 prints on stderr for a vector CPU string: not the program's output."""


class _DropNotice:
    """A stderr sink that drops QEMU's own notice at the very start of the stream."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._head = b""
        self._passing = False

    def __call__(self, data: bytes) -> None:
        if self._passing:
            self._write(data)
            return
        self._head += data
        if QEMU_NOTICE.startswith(self._head):
            return  # may still be the notice
        self._passing = True
        rest = self._head.removeprefix(QEMU_NOTICE)
        if rest:
            self._write(rest)

    def flush(self) -> None:
        """Write what was held back (output that only looked like the notice's start)."""
        if not self._passing and self._head != QEMU_NOTICE:
            self._write(self._head)
        self._passing = True


def _tee(process: subprocess.Popen[bytes], out: Callable[[bytes], None],
         err: Callable[[bytes], None], deadline: float) -> bool:
    """Copy the process's output to the sinks until it exits; ``False`` on timeout."""
    selector = selectors.DefaultSelector()
    assert process.stdout is not None and process.stderr is not None
    selector.register(process.stdout, selectors.EVENT_READ, out)
    selector.register(process.stderr, selectors.EVENT_READ, err)
    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        for key, _ in selector.select(remaining):
            data = os.read(key.fd, 1 << 16)
            if data:
                key.data(data)
            else:
                selector.unregister(key.fileobj)
                open_streams -= 1
    remaining = max(0.0, deadline - time.monotonic())
    try:
        process.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        return False
    return True
