"""``--configure vm``: debootstrap's second stage inside ``qemu-system-riscv64``.

No root and no binfmt_misc: the unpacked tree (with the first-boot hook and rvforge's
``/init``) is packed as an uncompressed initramfs and booted through the registered
``qemu-virt`` launcher. In the guest, a first hook (:data:`MARK_HOOK`) notes the time,
the configuring hook runs (preinsts, ``dpkg --configure -a``), and the command then
writes on its standard output, which the launcher returns, a tar stream of only what
configuring created or changed (``ctime`` newer than the note; numeric owners, one file
system, the mount points left out) and the list of every path left. That is a few MB
where the whole tree is ~100 MB, and output crosses the virtio-serial port at about
2 MB/s. :func:`~rvforge_debootstrap.firstboot.adopt_changes` merges it into the tree.

While the VM runs, its console log is followed: each ``Setting up`` line of dpkg
advances a progress bar (on a terminal), every line goes to the debug log (``-v``), and
the boot and the end of configuring are logged.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rvforge import (
    READY_MARKER,
    BootFailedError,
    BuildContext,
    Step,
    ToolMissingError,
    Tree,
    build_options,
    pack,
)

from rvforge_debootstrap.firstboot import HOOK, HOOK_DIR, adopt_changes

if TYPE_CHECKING:
    from rvforge import Task

LAUNCHER = "qemu-virt"
MACHINE = "qemu-virt"
TIMEOUT = 900.0
"""Seconds for the whole VM run: ~90 s on a quiet 2-core host, 3-5x that when loaded."""
MIN_MEMORY_MB = 2048
MARK = "/tmp/rvforge-configure-start"
MARK_HOOK = f"{HOOK_DIR}/00-rvforge-configure-start"
MARK_SCRIPT = f"""#!/bin/sh
# rvforge-debootstrap (--configure vm): note when configuring starts, so that only what it
# changes goes back to the build host; 2 s early, as file times come from a coarse clock
# (sending a file too many is harmless, missing one is not).
touch -d "@$(( $(date +%s) - 2 ))" {MARK} && rm -f "$0"
"""
LISTING = "/.rvforge-configured-paths"
KEPT = ("/proc", "/sys", "/dev", "/tmp", "/run")
"""Mount points in the guest: neither their contents nor their mounted modes go back."""


def send_changes(mark: str, scratch: str) -> str:
    """Shell commands that, run in the root, write :data:`LISTING` (every path, NUL
    separated) and then on stdout a tar of every entry whose ``ctime`` is newer than the
    ``mtime`` of ``mark`` (the listing included), :data:`KEPT` pruned; ``scratch`` is a
    directory elsewhere for the list of those entries."""
    find = "find . -xdev \\( " + " -o ".join(f"-path .{p}" for p in KEPT) + " \\) -prune -o"
    return (f"{find} -print0 > .{LISTING}\n"
            f"{find} -cnewer {mark} -print0 > {scratch}/rvforge-changed\n"
            f"exec tar --numeric-owner --no-recursion --null -T {scratch}/rvforge-changed "
            "-cf -\n")


# rvforge's /init runs first-boot hooks before the command (each then deletes itself); an
# init that did not leaves them for the command to run.
SCRIPT = f"""set -e
[ ! -e {MARK_HOOK} ] || {MARK_HOOK}
[ ! -e {HOOK} ] || {HOOK} >&2
cd /
{send_changes(MARK, "/tmp")}"""
SETTING_UP = "Setting up "
HOOK_STARTED = f"rvforge: first-boot hook {HOOK}"
POLL_SECONDS = 0.5


def memory_for(tree: Tree) -> int:
    """RAM for the VM: the initramfs and its unpacked copy, plus room for dpkg and tar."""
    return max(MIN_MEMORY_MB, (tree.stats().file_bytes * 5 // 2 >> 20) + 1024)


def preflight(ctx: BuildContext) -> None:
    """Check that the launcher and rvforge's ``/init`` are installed."""
    if not available(ctx):
        raise ToolMissingError(f"--configure vm needs the {LAUNCHER!r} launcher and the "
                               "'init' overlay: install rvforge-qemu, or use --configure "
                               "first-boot")


def available(ctx: BuildContext) -> bool:
    """Whether this installation can configure in a VM."""
    return LAUNCHER in ctx.registry.launchers and "init" in ctx.registry.overlays


def configure_in_vm(tree: Tree, ctx: BuildContext, packages: int | None = None, *,
                    machine_name: str = MACHINE) -> None:
    """Configure ``tree`` in a VM on ``machine_name`` (an RVA23 release's scripts need an
    RVA23 CPU) and merge what changed into it (``packages``: how many ``Setting up`` lines
    to expect, for the progress bar)."""
    preflight(ctx)
    registry = ctx.registry
    boot_tree = tree.copy()
    init_cls = registry.overlays.get("init")
    init_cls().apply(boot_tree, build_options(init_cls.Options, {"replace": True},
                                              owner="overlay 'init'"), ctx)
    boot_tree.add_file(MARK_HOOK, MARK_SCRIPT.encode(), mode=0o755)
    work = ctx.scratch("debootstrap", "vm")
    artifact = pack(registry, boot_tree, Step("cpio", None), "cpio", work / "configure.cpio",
                    ctx)
    console = work / "console.log"
    launcher_cls = registry.launchers.get(LAUNCHER)
    options = build_options(launcher_cls.Options,
                            {"timeout": TIMEOUT, "memory": memory_for(tree),
                             "console_log": console},
                            owner=f"launcher {LAUNCHER!r}")
    machine = registry.machines.get(machine_name)
    ctx.log.info("configuring in a VM", machine=machine_name, image_bytes=artifact.size,
                 timeout=TIMEOUT)
    with ctx.progress.task("configuring packages (VM)", total=packages) as task, \
            ConsoleFollower(console, task, ctx.log):
        result = launcher_cls().run(artifact, machine, ["sh", "-c", SCRIPT], options, ctx)
    if not result.ok or result.status != 0:
        tail = " | ".join(result.stderr.decode(errors="replace").strip().splitlines()[-5:])
        reason = result.reason or f"exit status {result.status}"
        raise BootFailedError(f"--configure vm: the second stage failed in the VM ({reason}): "
                              f"{tail}; console log: {console}")
    stream = work / "changes.tar"
    stream.write_bytes(result.stdout)
    adopt_changes(tree, stream, Path(tempfile.mkdtemp(prefix="contents-", dir=work)),
                  listing=LISTING, kept=KEPT, mode="vm", hint=f"see the console log {console}")
    ctx.log.info("configured in a VM", seconds=round(result.seconds, 1), entries=len(tree),
                 changes_bytes=len(result.stdout))


class ConsoleFollower:
    """Follows the VM's console log while QEMU writes it (a thread, as a ``with`` block):
    every line goes to the debug log, each ``Setting up`` line advances ``task``, and the
    hook's start and the ready marker are logged."""

    def __init__(self, path: Path, task: Task, log: Any) -> None:
        self.path, self.task, self.log = path, task, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="vm-console", daemon=True)
        self._offset = 0
        self._partial = b""

    def __enter__(self) -> ConsoleFollower:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._read()
        self._read()

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:  # QEMU has not started yet
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            self.line(raw.decode("utf-8", "replace").rstrip("\r"))

    def line(self, line: str) -> None:
        """Handle one console line."""
        self.log.debug("vm console", line=line)
        if line.startswith(SETTING_UP):
            self.task.advance()
        elif line == HOOK_STARTED:
            self.log.info("VM booted; configuring packages")
        elif line.strip() == READY_MARKER:
            self.log.info("packages configured; sending the changes back",
                          configured=self.task.done)
