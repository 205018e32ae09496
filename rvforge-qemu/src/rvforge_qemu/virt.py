"""The ``qemu-virt`` launcher: ``qemu-system-riscv64 -machine virt``.

An initramfs artifact is passed with ``-initrd``; a disk image (ext4) becomes a
``virtio-blk-pci`` device in snapshot mode (the image file is never written) and boots
through a small boot initramfs (:mod:`rvforge_qemu.diskboot`). The guest speaks rvforge's
init protocol (:mod:`rvforge.builtin.init_overlay`) over virtio-serial ports; see
:mod:`rvforge_qemu.guest`.
"""

from __future__ import annotations

import dataclasses
import secrets
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rvforge import (
    Artifact,
    BootFailedError,
    BootResult,
    BuildContext,
    Kernel,
    Launcher,
    Machine,
    RunResult,
    UsageError,
)

from rvforge_qemu.console import IllegalInstruction, new_log_path
from rvforge_qemu.cpuisa import machine_isa
from rvforge_qemu.devices import Devices
from rvforge_qemu.diskboot import boot_initramfs
from rvforge_qemu.guest import Guest, GuestFailure, channel_args
from rvforge_qemu.image import image_file_finder
from rvforge_qemu.interactive import ESCAPE_NAME, interactive_words, run_console
from rvforge_qemu.kernels import resolve_kernel
from rvforge_qemu.modules import concatenated_initrd, modules_cpio
from rvforge_qemu.options import LaunchOptions, command_script, sink
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import system_qemu
from rvforge_qemu.session import Session

ResultT = TypeVar("ResultT", bound=BootResult)

KERNEL_ARGS = ("console=ttyS0", "rdinit=/init", "panic=-1")
KERNEL_START_SECONDS = 90.0
"""A QEMU whose kernel has printed nothing this long after starting is restarted (the kernel
prints within seconds even on a loaded machine)."""
START_ATTEMPTS = 3
"""Every boot's kernel command line starts with these (the machine's ``append`` follows)."""

INITRD_ADDRESS_MB = 2048 + 2 + 128
"""Where QEMU's riscv ``virt`` loads ``-initrd``: RAM base (2 GiB) + the kernel's 2 MiB
offset + 128 MiB. QEMU 7.2 caps the initrd at *RAM size minus that address* (a size minus
an address), so with RAM just above 2178 MiB a large initrd "could not load ramdisk";
at or below it the subtraction wraps and there is no cap."""


def memory_for_initrd(memory_mb: int, initrd_bytes: int) -> int:
    """``memory_mb``, raised when QEMU 7.2 would refuse an initrd of ``initrd_bytes``."""
    needed = INITRD_ADDRESS_MB + -(-initrd_bytes // (1 << 20)) + 64
    return needed if INITRD_ADDRESS_MB < memory_mb < needed else memory_mb


class QemuVirt(Launcher[LaunchOptions]):
    name = "qemu-virt"
    summary = "boots initramfs and ext4 images with qemu-system-riscv64 -machine virt"
    Options = LaunchOptions
    cache_entries = {"qemu/isa/*": "qemu-probes", "qemu/binaries/*": "qemu-probes",
                     "qemu/bootinit/*": "boot-modules", "qemu/modules/*": "boot-modules",
                     "qemu/console/*": "console-logs"}

    def machine_isa(self, machine: Machine, ctx: BuildContext) -> str:
        """The profile's ``isa`` if set, else what the installed QEMU reports for its CPU."""
        return machine.isa or machine_isa(machine, ctx)

    def host_tool(self, machine: Machine, ctx: BuildContext) -> str:
        return system_qemu(machine.options, ctx).describe()

    def devices(self, machine: Machine, options: LaunchOptions) -> Devices:
        """The boot's shares, network and gdbstub: the profile's, then the options'."""
        settings = settings_of(machine)
        return Devices.parse([*settings.shares, *options.share], settings.net or options.net,
                             [*settings.forwards, *options.forward], options.gdb,
                             options.halted)

    def command_line(self, artifact: Artifact, machine: Machine, kernel: Kernel,
                     options: LaunchOptions, ctx: BuildContext) -> list[str]:
        """The QEMU command line booting ``artifact`` (without rvforge's channels)."""
        settings = settings_of(machine)
        devices = self.devices(machine, options)
        try:
            extra_words = shlex.split(options.append)
        except ValueError as error:
            raise UsageError(f"--append {options.append!r}: {error}") from None
        if artifact.kind == "initramfs":
            initrd = self._initrd(artifact, kernel, devices, ctx)
            boot = ["-initrd", str(initrd)]
            size = initrd.stat().st_size
        elif artifact.kind == "disk":
            boot = ["-initrd", str(boot_initramfs(kernel, ctx, devices.modules, devices.net)),
                    "-drive", (f"file={artifact.path},format=raw,if=none,id=rvforge-disk,"
                               "snapshot=on"),
                    "-device", "virtio-blk-pci,drive=rvforge-disk"]
            size = 0
        else:
            raise UsageError(f"{artifact.path}: a {artifact.kind} artifact cannot boot; build "
                             "an initramfs (-o NAME.cpio.gz) or a disk image (-o NAME.ext4)")
        memory = memory_for_initrd(options.memory or machine.memory_mb, size)
        if memory != (options.memory or machine.memory_mb):
            ctx.log.info("more RAM so QEMU can load the initramfs", memory_mb=memory)
        argv = [
            *system_qemu(machine.options, ctx).base_args(), "-machine", "virt",
            "-cpu", settings.cpu,
            "-smp", str(options.cpus or machine.cpus),
            "-m", f"{memory}M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-bios", settings.bios, "-kernel", str(kernel.image), *boot,
        ]
        append = [*KERNEL_ARGS, *settings.append, *devices.kernel_words(), *extra_words]
        if options.interactive:
            append += interactive_words()
        if devices.gdb_port is not None:
            ctx.log.info("gdbstub", listen=f"127.0.0.1:{devices.gdb_port}",
                         halted=devices.halted,
                         attach=f"gdb-multiarch -ex 'target remote :{devices.gdb_port}' "
                                f"{kernel.image}")
        return [*argv, "-append", " ".join(append), *devices.qemu_args(), *settings.extra_args,
                *options.qemu_arg]

    def _initrd(self, artifact: Artifact, kernel: Kernel, devices: Devices,
                ctx: BuildContext) -> Path:
        """The image itself, or, when the boot needs kernel modules, the module archive
        followed by the image in a scratch file (the image is never rewritten)."""
        if not devices.modules:
            return artifact.path
        modules = modules_cpio(kernel, devices.modules, devices.net, ctx)
        dest = ctx.scratch("qemu-initrd", secrets.token_hex(6)) / "initrd"
        return concatenated_initrd([modules, artifact.path], dest)

    def boot(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
             ctx: BuildContext) -> BootResult:
        if options.interactive:
            return self._interactive(artifact, machine, options, ctx)
        result = BootResult(ok=False)
        called = time.monotonic()
        with self._guest(artifact, machine, options, ctx) as (guest, deadline):
            try:
                # from this call, so rvforge's own work before QEMU starts counts too
                result.seconds = _wait_ready(guest, deadline, artifact, options, ctx) \
                    + guest.started - called
                ctx.log.info("guest ready", seconds=round(result.seconds, 2))
                guest.shutdown()
                result.ok = True
            except GuestFailure as failure:
                result.reason = _reason(failure, options)
                result.seconds = time.monotonic() - called
        return self._finish(result, guest, artifact, machine, ctx)

    def run(self, artifact: Artifact, machine: Machine, argv: list[str],
            options: LaunchOptions, ctx: BuildContext) -> RunResult:
        result = RunResult(ok=False)
        stdout, stderr = bytearray(), bytearray()
        with self._guest(artifact, machine, options, ctx) as (guest, deadline):
            try:
                _wait_ready(guest, deadline, artifact, options, ctx)
                result.status = guest.execute(
                    command_script(argv), deadline, sink(stdout, options.stream, err=False),
                    sink(stderr, options.stream, err=True))
                guest.shutdown()
                result.ok = True
            except GuestFailure as failure:
                result.reason = _reason(failure, options)
            result.seconds = time.monotonic() - guest.started
        result.stdout, result.stderr = bytes(stdout), bytes(stderr)
        return self._finish(result, guest, artifact, machine, ctx)

    @contextmanager
    def session(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
                ctx: BuildContext) -> Iterator[Session]:
        """Boot ``artifact`` once and run many commands in it (``with`` block; the guest
        powers off at its end). A boot failure raises :class:`~rvforge.BootFailedError`
        with the console's last lines."""
        with self._guest(artifact, machine, options, ctx) as (guest, deadline):
            try:
                _wait_ready(guest, deadline, artifact, options, ctx)
            except GuestFailure as failure:
                tail = "\n".join(f"  | {line}" for line in guest.console.lines())
                raise BootFailedError(
                    f"{artifact.path} did not boot on {machine.name}: "
                    f"{_reason(failure, options)}; console log: {guest.console.log_path}\n"
                    f"{tail}") from None
            yield Session(guest, options,
                          lambda events: self._diagnose(events, artifact, machine, ctx))
            guest.shutdown()

    # -- helpers -----------------------------------------------------------------------

    def _guest(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
               ctx: BuildContext) -> _GuestContext:
        self.devices(machine, options)  # bad --share/--forward values: before any download
        kernel = resolve_kernel(options.kernel, ctx)
        argv = self.command_line(artifact, machine, kernel, options, ctx)
        log = options.console_log or new_log_path(
            ctx.cache("qemu", "console"), f"{artifact.path.name}.{machine.name}")
        return _GuestContext(argv, Path(log), options.timeout, ctx, f"machine {machine.name!r}",
                             echo=options.console, watch_kernel=_kernel_speaks(argv))

    def _finish(self, result: ResultT, guest: Guest, artifact: Artifact, machine: Machine,
                ctx: BuildContext) -> ResultT:
        result.console_log = guest.console.log_path
        result.console_tail = guest.console.lines()
        result.diagnosis = self._diagnose(guest.console.sigills, artifact, machine, ctx)
        return result

    def _diagnose(self, events: list[IllegalInstruction], artifact: Artifact,
                  machine: Machine, ctx: BuildContext) -> list[str]:
        if not events:
            return []
        from rvforge_qemu.sigill import diagnose  # numpy: only when there is a fault

        resolved = dataclasses.replace(machine, isa=self.machine_isa(machine, ctx))
        return diagnose(events, resolved, image_file_finder(artifact, ctx),
                        lambda: _bootable_machines(self, ctx))

    def _interactive(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
                     ctx: BuildContext) -> BootResult:
        self.devices(machine, options)
        kernel = resolve_kernel(options.kernel, ctx)
        argv = self.command_line(artifact, machine, kernel, options, ctx)
        log = options.console_log or new_log_path(
            ctx.cache("qemu", "console"), f"{artifact.path.name}.{machine.name}")
        ctx.log.info(f"interactive console: {ESCAPE_NAME} leaves (the VM is killed), "
                     "'exit' powers the guest off", console_log=str(log))
        return run_console(argv, Path(log), f"machine {machine.name!r}")


class _GuestContext:
    """``with`` block owning a started :class:`Guest` and its socket directory."""

    def __init__(self, argv: list[str], log: Path, timeout: float, ctx: BuildContext,
                 label: str, *, echo: bool = False, watch_kernel: bool = True) -> None:
        self.argv, self.log, self.timeout, self.ctx, self.label = argv, log, timeout, ctx, label
        self.echo, self.watch_kernel = echo, watch_kernel
        self._current: Guest | None = None

    def __enter__(self) -> tuple[Guest, float]:
        self._tmp = tempfile.TemporaryDirectory(prefix="rvforge-vm-")
        deadline = time.monotonic() + self.timeout
        attempts = START_ATTEMPTS if self.watch_kernel else 1
        try:
            for attempt in range(1, attempts + 1):
                guest = self._start(deadline)
                stall = min(deadline, time.monotonic() + KERNEL_START_SECONDS)
                if attempt == attempts or guest.wait_kernel(stall) \
                        or time.monotonic() >= deadline:
                    break
                # QEMU 7.2 now and then spins after OpenSBI and never runs the kernel
                self.ctx.log.warning("the kernel printed nothing; restarting QEMU",
                                     seconds=KERNEL_START_SECONDS, attempt=attempt)
                guest.kill()
        except BaseException:
            self.__exit__()
            raise
        return guest, deadline

    def _start(self, deadline: float) -> Guest:
        socket_dir = Path(self._tmp.name)
        guest = Guest([*self.argv, *channel_args(socket_dir)], socket_dir, self.log,
                      self.label, echo=sys.stderr.buffer if self.echo else None)
        self._current = guest
        self.ctx.log.debug("starting QEMU", argv=" ".join(self.argv))
        guest.start(deadline)
        return guest

    def __exit__(self, *exc: object) -> None:
        if self._current is not None:
            self._current.kill()
        self._tmp.cleanup()


def _kernel_speaks(argv: list[str]) -> bool:
    """Whether the kernel's first line is something to wait for: not when the CPUs wait
    for a debugger (``-S``) or the command line silences the kernel (``quiet``)."""
    if "-S" in argv:
        return False
    words = argv[argv.index("-append") + 1].split() if "-append" in argv else []
    return not any(w == "quiet" or w.startswith("loglevel=") for w in words)


def _wait_ready(guest: Guest, deadline: float, artifact: Artifact, options: LaunchOptions,
                ctx: BuildContext) -> float:
    """:meth:`Guest.wait_ready`, with a spinner and the elapsed time on a terminal (not
    with ``--console``, which shows the console itself); a share, module or network the
    guest could not set up is a failed boot."""
    if options.console:
        seconds = guest.wait_ready(deadline)
    else:
        with ctx.progress.task(f"booting {artifact.path.name}"):
            seconds = guest.wait_ready(deadline)
    if guest.console.setup_errors:  # a missing share or network is not a working boot
        raise GuestFailure(f"the guest could not set up the boot: "
                           f"{'; '.join(guest.console.setup_errors)}")
    return seconds


def _reason(failure: GuestFailure, options: LaunchOptions) -> str:
    text = str(failure)
    return f"{text} (--timeout {options.timeout:g} s)" if text.startswith("timed out") else text


def _bootable_machines(launcher: QemuVirt, ctx: BuildContext) -> Iterator[Machine]:
    for reg in ctx.registry.machines:
        machine = reg.component
        if machine.launcher != launcher.name:
            continue
        try:
            yield dataclasses.replace(machine, isa=launcher.machine_isa(machine, ctx))
        except Exception as error:
            ctx.log.debug("machine not suggested", machine=machine.name, error=str(error))
