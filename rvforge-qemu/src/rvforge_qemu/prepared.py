"""A ``qemu-virt`` launch worked out once: the devices checked, the kernel found, the QEMU
command line and where the console goes. Boot, run, session and the interactive console
all start from one :class:`PreparedLaunch`.

An initramfs artifact is passed with ``-initrd``; a disk image (ext4) becomes a read-only
``virtio-blk-pci`` device (the guest writes to a RAM overlay over it, so the image file is
never written and a RAM snapshot holds everything) and boots through a small boot
initramfs (:mod:`rvforge_qemu.diskboot`).
"""

from __future__ import annotations

import hashlib
import secrets
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from rvforge import Artifact, BuildContext, Kernel, Machine, UsageError, check_image
from rvforge.net.download import write_atomic
from rvforge.protocol import SHARE_ARGUMENT

from rvforge_qemu.console import new_log_path
from rvforge_qemu.devices import Devices
from rvforge_qemu.diskboot import boot_initramfs
from rvforge_qemu.interactive import interactive_words
from rvforge_qemu.kernels import kernel_symbols, resolve_kernel
from rvforge_qemu.modules import concatenated_initrd, modules_cpio
from rvforge_qemu.options import LaunchOptions
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import system_qemu
from rvforge_qemu.snapshots import SnapshotStore, snapshot_key
from rvforge_qemu.warm import SnapshotPlan

SNAPSHOT_MIN_QEMU = (7, 2)
"""The oldest QEMU snapshots were tried on (7.2 and 10.0.2); older ones boot cold."""
KERNEL_ARGS = ("console=ttyS0", "rdinit=/init", "panic=-1")
"""Every boot's kernel command line starts with these (the machine's ``append`` follows)."""

INITRD_ADDRESS_MB = 2048 + 2 + 128
"""Where QEMU's riscv ``virt`` loads ``-initrd``: RAM base (2 GiB) + the kernel's 2 MiB
offset + 128 MiB. QEMU 7.2 caps the initrd at *RAM size minus that address* (a size minus
an address), so with RAM just above 2178 MiB a large initrd "could not load ramdisk";
at or below it the subtraction wraps and there is no cap."""


@dataclass(frozen=True)
class PreparedLaunch:
    """What starting ``qemu-virt`` needs, worked out once.

    :param kernel: the kernel it boots.
    :param devices: the checked shares, network and gdbstub.
    :param argv: the QEMU command line (without rvforge's channels or a serial port).
    :param console_log: where the serial console is kept.
    :param label: names the VM in QEMU's start-up errors (``machine 'qemu-virt'``).
    """

    kernel: Kernel
    devices: Devices
    argv: tuple[str, ...]
    console_log: Path
    label: str
    snapshot: SnapshotPlan | None = None
    """How this launch uses the snapshot store (``None``: it boots cold, saves nothing)."""

    @property
    def kernel_speaks(self) -> bool:
        """Whether the kernel's first line is something to wait for: not when the CPUs wait
        for a debugger (``-S``) or the command line silences the kernel (``quiet``)."""
        return kernel_speaks(list(self.argv))


def devices_of(machine: Machine, options: LaunchOptions) -> Devices:
    """The boot's shares, network and gdbstub: the profile's, then the options'."""
    settings = settings_of(machine)
    return Devices.parse([*settings.shares, *options.share], settings.net or options.net,
                         [*settings.forwards, *options.forward], options.gdb_listen,
                         options.halted)


def prepare(artifact: Artifact, machine: Machine, options: LaunchOptions,
            ctx: BuildContext) -> PreparedLaunch:
    """Check the devices (a bad ``--share`` fails before any download), find the kernel,
    build the command line and pick the console log."""
    devices = devices_of(machine, options)
    extra_words = _append_words(options.append)
    if not options.no_check:  # an image whose /init cannot start fails now, not in a panic
        check_image_once(artifact, ctx, hint=f"{ctx.flag('no-check')} boots it anyway")
    kernel = resolve_kernel(options.kernel, ctx, refresh=options.refresh)
    symbols = _symbols(options, kernel, ctx) if options.gdb_symbols else None
    warm = snapshot_capable(machine, devices, options, ctx)
    argv = command_line(artifact, machine, kernel, devices, extra_words, options, ctx,
                        symbols=symbols, shares_on_cmdline=not warm, shell_on_cmdline=not warm)
    log = options.console_log or new_log_path(
        ctx.cache("qemu", "console"), f"{artifact.path.name}.{machine.name}")
    plan = None
    if warm:
        store = SnapshotStore(ctx)
        key = snapshot_key(system_qemu(machine.options, ctx), argv, machine.name,
                           store.digests)
        plan = SnapshotPlan(store, key, devices.shares)
    return PreparedLaunch(kernel, devices, tuple(argv), Path(log),
                          f"machine {machine.name!r}", plan)


def check_image_once(artifact: Artifact, ctx: BuildContext, *, hint: str) -> None:
    """:func:`rvforge.check_image`, remembered against the file's identity (path, device,
    inode, size, modification time): an image that passed is not read again (reading the
    headers of a 48 MB ``.cpio.gz`` means inflating all of it, 0.6 s)."""
    st = artifact.path.stat()
    identity = (f"init-check\0{artifact.kind}\0{artifact.path.resolve()}\0{st.st_dev}\0"
                f"{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}")
    memo = ctx.cache("qemu", "digests") / f"checked-{_sha256(identity)[:32]}"
    if memo.is_file():
        return
    check_image(artifact, hint=hint)
    if artifact.path.stat().st_mtime_ns == st.st_mtime_ns:  # not rewritten while read
        write_atomic(memo, b"")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot_capable(machine: Machine, devices: Devices, options: LaunchOptions,
                     ctx: BuildContext) -> bool:
    """Whether this launch restores and saves snapshots: not with ``--no-snapshot``, nor with
    a debugger (it wants the boot itself), nor on a QEMU older than
    :data:`SNAPSHOT_MIN_QEMU`, nor without ``zstd``. An interactive console is (its shell
    starts after the restore: :mod:`rvforge_qemu.interactive`)."""
    if options.no_snapshot or devices.gdb_port is not None:
        return False
    qemu = system_qemu(machine.options, ctx)
    if qemu.version_tuple < SNAPSHOT_MIN_QEMU:
        ctx.log.debug("this QEMU does not keep a restored guest's timer interrupts: "
                      "booting without snapshots", qemu=qemu.describe())
        return False
    if shutil.which("zstd") is None:
        ctx.log.debug("no zstd on PATH: booting without snapshots")
        return False
    return True


def command_line(artifact: Artifact, machine: Machine, kernel: Kernel, devices: Devices,
                 extra_words: list[str], options: LaunchOptions,
                 ctx: BuildContext, *, symbols: Path | None = None,
                 shares_on_cmdline: bool = True, shell_on_cmdline: bool = True) -> list[str]:
    """The QEMU command line booting ``artifact`` (without rvforge's channels);
    ``symbols`` is the kernel's ELF for gdb, named in the gdbstub's attach line. Without
    ``shares_on_cmdline`` the shares' devices are there but the guest does not mount them
    at boot (a boot to be saved: see :mod:`rvforge_qemu.warm`); without
    ``shell_on_cmdline`` an interactive boot's ``/init`` serves requests as ``run``'s does
    (same snapshot key) and the shell comes as a request."""
    settings = settings_of(machine)
    if artifact.kind == "initramfs":
        initrd = _initrd(artifact, kernel, devices, ctx)
        boot = ["-initrd", str(initrd)]
        size = initrd.stat().st_size
    elif artifact.kind == "disk":
        boot = ["-initrd", str(boot_initramfs(kernel, ctx, devices.modules, devices.net)),
                "-drive", (f"file={artifact.path},format=raw,if=none,id=rvforge-disk,"
                           "readonly=on"),
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
    device_words = [w for w in devices.kernel_words()
                    if shares_on_cmdline or not w.startswith(SHARE_ARGUMENT)]
    append = [*KERNEL_ARGS, *settings.append, *device_words, *extra_words]
    if options.interactive and shell_on_cmdline:
        append += interactive_words()
    if devices.gdb_port is not None:
        ctx.log.info("gdbstub", listen=f"127.0.0.1:{devices.gdb_port}", halted=devices.halted,
                     attach=f"gdb-multiarch -ex 'target remote :{devices.gdb_port}' "
                            f"{symbols or 'PROGRAM'}"
                            + ("" if symbols else f" (kernel symbols: {ctx.flag('gdb-symbols')})"))
    return [*argv, "-append", " ".join(append), *devices.qemu_args(), *settings.extra_args,
            *options.qemu_arg]


def _symbols(options: LaunchOptions, kernel: Kernel, ctx: BuildContext) -> Path | None:
    """The kernel's ELF with symbols, or ``None`` after saying plainly there is none."""
    found = kernel_symbols(options.kernel, kernel, ctx)
    if found is None:
        ctx.log.warning(f"{ctx.flag('gdb-symbols')}: kernel {kernel.image} is not an ELF "
                        "file and its source has no debug symbols; gdb gets none (boot your "
                        f"own build with {ctx.flag('kernel')} PATH/vmlinux)")
    return found


def memory_for_initrd(memory_mb: int, initrd_bytes: int) -> int:
    """``memory_mb``, raised when QEMU 7.2 would refuse an initrd of ``initrd_bytes``."""
    needed = INITRD_ADDRESS_MB + -(-initrd_bytes // (1 << 20)) + 64
    return needed if INITRD_ADDRESS_MB < memory_mb < needed else memory_mb


def kernel_speaks(argv: list[str]) -> bool:
    """See :attr:`PreparedLaunch.kernel_speaks`."""
    if "-S" in argv:
        return False
    words = argv[argv.index("-append") + 1].split() if "-append" in argv else []
    return not any(w == "quiet" or w.startswith("loglevel=") for w in words)


def _append_words(append: str) -> list[str]:
    try:
        return shlex.split(append)
    except ValueError as error:
        raise UsageError(f"--append {append!r}: {error}") from None


def _initrd(artifact: Artifact, kernel: Kernel, devices: Devices,
            ctx: BuildContext) -> Path:
    """The image itself, or, when the boot needs kernel modules, the module archive
    followed by the image in a scratch file (the image is never rewritten)."""
    if not devices.modules:
        return artifact.path
    modules = modules_cpio(kernel, devices.modules, devices.net, ctx)
    dest = ctx.scratch("qemu-initrd", secrets.token_hex(6)) / "initrd"
    return concatenated_initrd([modules, artifact.path], dest)
