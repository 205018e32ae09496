"""The ``qemu-virt`` launcher: ``qemu-system-riscv64 -machine virt``.

Boot, run, session and the interactive console each work their launch out once
(:mod:`rvforge_qemu.prepared`: devices, kernel, command line, console log) and start it
(:mod:`rvforge_qemu.starting`); the guest speaks rvforge's init protocol
(:mod:`rvforge.builtin.init_overlay`) over virtio-serial ports, see :mod:`rvforge_qemu.guest`.
``--qemu`` reaches QEMU through :meth:`QemuVirt.context_settings`, which
:func:`rvforge.prepare_launch` applies.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rvforge import (
    Artifact,
    BootFailedError,
    BootResult,
    BuildContext,
    Launcher,
    Machine,
    RunResult,
    SharedDirectory,
)

from rvforge_qemu.console import IllegalInstruction
from rvforge_qemu.cpuisa import cpu_isa, machine_isa, with_vlen
from rvforge_qemu.guest import CommandTimedOut, Guest, GuestFailure
from rvforge_qemu.image import image_file_finder
from rvforge_qemu.interactive import ESCAPE_NAME, attach, run_console
from rvforge_qemu.options import LaunchOptions, command_script, qemu_settings, sink
from rvforge_qemu.prepared import PreparedLaunch, devices_of, prepare
from rvforge_qemu.prestart import PrestartedQemu
from rvforge_qemu.profiles import relative_paths, settings_of
from rvforge_qemu.qemubin import system_qemu
from rvforge_qemu.session import Session
from rvforge_qemu.starting import StartedGuest
from rvforge_qemu.warm import freshen, run_refreshed, save_ready

ResultT = TypeVar("ResultT", bound=BootResult)


class QemuVirt(Launcher[LaunchOptions]):
    name = "qemu-virt"
    summary = "boots initramfs and ext4 images with qemu-system-riscv64 -machine virt"
    Options = LaunchOptions
    supports_session = True
    cache_entries = {"qemu/isa/*": "qemu-probes", "qemu/binaries/*": "qemu-probes",
                     "qemu/bootinit/*": "boot-modules", "qemu/modules/*": "boot-modules",
                     "qemu/console/*": "console-logs", "qemu/snapshots/*": "snapshots",
                     "qemu/digests/*": "snapshots", "qemu/prestart/*": "snapshots"}

    def machine_isa(self, machine: Machine, ctx: BuildContext) -> str:
        """The profile's ``isa`` if set (with the ``zvl<N>b`` of a ``vlen`` setting), else
        what the installed QEMU reports for its CPU."""
        if machine.isa:
            return with_vlen(machine.isa, settings_of(machine).cpu)
        return machine_isa(machine, ctx)

    def host_tool(self, machine: Machine, ctx: BuildContext) -> str:
        """The QEMU that boots ``machine``; for a board profile (its ``isa`` given) this
        QEMU must also take its CPU string, else why not (exit 2) is raised."""
        qemu = system_qemu(machine.options, ctx)
        if machine.isa:
            settings = settings_of(machine)
            qemu.require_model(settings.model, machine.name)
            cpu_isa(settings.cpu, ctx, machine=machine.name, qemu=qemu)
        return qemu.describe()

    @classmethod
    def profile_settings(cls, settings: Mapping[str, Any], base: Path) -> dict[str, Any]:
        """Besides ``qemu``: each share's HOST and a ``bios`` path (:func:`relative_paths`)."""
        return relative_paths(super().profile_settings(settings, base), base)

    def context_settings(self, options: LaunchOptions) -> Mapping[str, Mapping[str, object]]:
        """``--qemu PATH``: the binary every QEMU call of this context uses."""
        return qemu_settings(options.qemu)

    def shared_directories(self, machine: Machine, options: LaunchOptions
                           ) -> list[SharedDirectory]:
        """The profile's shares, then ``--share``'s (checked as a boot checks them)."""
        return [SharedDirectory(s.host, s.guest) for s in devices_of(machine, options).shares]

    def prepare(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
                ctx: BuildContext) -> PreparedLaunch:
        """The launch worked out once (:func:`rvforge_qemu.prepared.prepare`); a board whose
        CPU this QEMU lacks is refused first, with the reason (:meth:`host_tool`)."""
        if machine.isa:
            self.host_tool(machine, ctx)
        return prepare(artifact, machine, options, ctx)

    def boot(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
             ctx: BuildContext) -> BootResult:
        called = time.monotonic()
        prepared = self.prepare(artifact, machine, options, ctx)
        if options.interactive:
            ctx.log.info(f"interactive console: {ESCAPE_NAME} leaves (the VM is killed), "
                         "'exit' powers the guest off", console_log=str(prepared.console_log))
            if prepared.snapshot is None:
                return run_console(list(prepared.argv), prepared.console_log, prepared.label)
            return self._warm_console(artifact, machine, options, ctx, prepared, called)
        result = BootResult(ok=False)
        if prepared.snapshot is not None:
            prepared.snapshot.restore = False  # a boot check boots; it may save for run
        with StartedGuest(prepared, options.timeout, ctx, echo=options.console) as (
                guest, deadline):
            try:
                # from this call, so rvforge's own work before QEMU starts counts too
                result.seconds = _wait_ready(guest, deadline, artifact, options, ctx) \
                    + guest.started - called
                ctx.log.info("guest ready", seconds=round(result.seconds, 2))
                if prepared.snapshot is not None:
                    save_ready(guest, prepared.snapshot, str(artifact.path), ctx)
                guest.shutdown()
                result.ok = True
            except GuestFailure as failure:
                result.reason = _reason(failure, guest, options)
                result.seconds = time.monotonic() - called
        return self._finish(result, guest, artifact, machine, ctx, prepared)

    def run(self, artifact: Artifact, machine: Machine, argv: list[str],
            options: LaunchOptions, ctx: BuildContext) -> RunResult:
        result = RunResult(ok=False)
        stdout, stderr = bytearray(), bytearray()
        early = ctx.take_prestarted(PrestartedQemu)
        try:
            prepared = self.prepare(artifact, machine, options, ctx)
            with StartedGuest(prepared, options.timeout, ctx, echo=options.console,
                              prestarted=early) as (guest, deadline):
                try:
                    folded = _ready(guest, deadline, artifact, options, prepared, ctx,
                                    fold_refresh=True)
                    result.booted = True
                    out, err = (sink(stdout, options.stream, err=False),
                                sink(stderr, options.stream, err=True))
                    if folded and prepared.snapshot is not None:
                        result.status = run_refreshed(guest, prepared.snapshot,
                                                      command_script(argv), deadline, out, err)
                    else:
                        result.status = guest.execute(command_script(argv), deadline, out,
                                                      err)
                    _stop(guest, prepared)
                    result.ok = True
                except GuestFailure as failure:
                    result.reason = _reason(failure, guest, options)
                result.seconds = time.monotonic() - guest.started
            if early is not None and result.ok:
                _remember(early, prepared, ctx)
        finally:
            if early is not None:
                early.close()
        result.stdout, result.stderr = bytes(stdout), bytes(stderr)
        return self._finish(result, guest, artifact, machine, ctx, prepared)

    @contextmanager
    def session(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
                ctx: BuildContext) -> Iterator[Session]:
        """Boot ``artifact`` once and run many commands in it (``with`` block; the guest
        powers off at its end). A boot failure raises :class:`~rvforge.BootFailedError`
        with the console's last lines."""
        prepared = self.prepare(artifact, machine, options, ctx)
        with StartedGuest(prepared, options.timeout, ctx, echo=options.console) as (
                guest, deadline):
            try:
                _ready(guest, deadline, artifact, options, prepared, ctx)
            except GuestFailure as failure:
                tail = "\n".join(f"  | {line}" for line in guest.console.lines())
                raise BootFailedError(
                    f"{artifact.path} did not boot on {machine.name}: "
                    f"{_reason(failure, guest, options)}; console log: "
                    f"{guest.console.log_path}\n"
                    f"{tail}") from None
            yield Session(guest, options,
                          lambda events: self._diagnose(events, artifact, machine, ctx,
                                                        prepared))
            _stop(guest, prepared)

    # -- helpers -----------------------------------------------------------------------

    def _warm_console(self, artifact: Artifact, machine: Machine, options: LaunchOptions,
                      ctx: BuildContext, prepared: PreparedLaunch, called: float
                      ) -> BootResult:
        """``--interactive`` as ``run`` starts: restored (or booted and saved), refreshed,
        then the shell on this terminal (:func:`rvforge_qemu.interactive.attach`)."""
        with StartedGuest(prepared, options.timeout, ctx, echo=sys.stdout.buffer) as (
                guest, deadline):
            try:
                _ready(guest, deadline, artifact, options, prepared, ctx)
            except GuestFailure as failure:
                result = BootResult(ok=False, reason=_reason(failure, guest, options),
                                    seconds=time.monotonic() - called)
                return self._finish(result, guest, artifact, machine, ctx, prepared)
            return attach(guest, called)

    def _finish(self, result: ResultT, guest: Guest, artifact: Artifact, machine: Machine,
                ctx: BuildContext, prepared: PreparedLaunch) -> ResultT:
        result.console_log = guest.console.log_path
        result.console_tail = guest.console.lines()
        result.diagnosis = self._diagnose(guest.console.sigills, artifact, machine, ctx,
                                          prepared)
        return result

    def _diagnose(self, events: list[IllegalInstruction], artifact: Artifact,
                  machine: Machine, ctx: BuildContext, prepared: PreparedLaunch) -> list[str]:
        if not events:
            return []
        from rvforge_qemu.sigill import diagnose  # numpy: only when there is a fault

        resolved = dataclasses.replace(machine, isa=self.machine_isa(machine, ctx))
        shares = [SharedDirectory(s.host, s.guest) for s in prepared.devices.shares]
        return diagnose(events, resolved, image_file_finder(artifact, ctx, shares),
                        lambda: _bootable_machines(self, ctx), ctx.flag)


def _remember(early: PrestartedQemu, prepared: PreparedLaunch, ctx: BuildContext) -> None:
    """After a warm run: what the same command line starts next time, early."""
    plan = prepared.snapshot
    if plan is not None and plan.exists():
        early.remember(list(prepared.argv), plan.store.state_path(plan.key), ctx.cache_dir)


def _stop(guest: Guest, prepared: PreparedLaunch) -> None:
    """Power the guest off; a restored one is killed (nothing in it is kept, and its
    power-off may wait on a timer that never fires, see :mod:`rvforge_qemu.warm`)."""
    if prepared.snapshot is not None and prepared.snapshot.restored:
        guest.kill()
    else:
        guest.shutdown()


def _ready(guest: Guest, deadline: float, artifact: Artifact, options: LaunchOptions,
           prepared: PreparedLaunch, ctx: BuildContext, *, fold_refresh: bool = False) -> bool:
    """The guest ready for commands: booted (or restored), its ready state saved the first
    time, then refreshed (randomness, clock, shares) when it is snapshot-capable. With
    ``fold_refresh``, a restored guest's refresh is left for the first command's request
    (:func:`rvforge_qemu.warm.run_refreshed`): returns whether it was."""
    plan = prepared.snapshot
    if plan is None or not plan.restored:
        _wait_ready(guest, deadline, artifact, options, ctx)
    if plan is None:
        return False
    save_ready(guest, plan, str(artifact.path), ctx)  # before any request of the run
    if fold_refresh and plan.restored:
        return True
    freshen(guest, plan, deadline)
    return False


def _wait_ready(guest: Guest, deadline: float, artifact: Artifact, options: LaunchOptions,
                ctx: BuildContext) -> float:
    """:meth:`Guest.wait_ready`, with a spinner and the elapsed time on a terminal (not
    with ``--console`` or ``--interactive``, which show the console itself); a share,
    module or network the guest could not set up is a failed boot."""
    if options.console or options.interactive:
        seconds = guest.wait_ready(deadline)
    else:
        with ctx.progress.task(f"booting {artifact.path.name}"):
            seconds = guest.wait_ready(deadline)
    if guest.console.setup_errors:  # a missing share or network is not a working boot
        raise GuestFailure(f"the guest could not set up the boot: "
                           f"{'; '.join(guest.console.setup_errors)}")
    return seconds


def _reason(failure: GuestFailure, guest: Guest, options: LaunchOptions) -> str:
    """One sentence saying what happened: a command that outlived the timeout, CPUs that
    waited for a debugger that never came, or the guest's own failure."""
    text, limit = str(failure), f"--timeout {options.timeout:g} s"
    if isinstance(failure, CommandTimedOut):
        return f"{text} ({limit})"
    if not text.startswith("timed out"):
        return text
    if options.halted and not guest.console.seen_output:
        return (f"the CPUs were still waiting for a debugger (--halted) when {limit} ran "
                f"out: attach one (gdb-multiarch -ex 'target remote :{options.gdb_listen}') "
                "or boot without --halted")
    return f"{text} ({limit})"


def _bootable_machines(launcher: QemuVirt, ctx: BuildContext) -> Iterator[Machine]:
    for reg in ctx.registry.machines:
        machine = reg.component
        if machine.launcher != launcher.name:
            continue
        try:
            launcher.host_tool(machine, ctx)  # a board whose CPU this QEMU lacks is no fix
            yield dataclasses.replace(machine, isa=launcher.machine_isa(machine, ctx))
        except Exception as error:
            ctx.log.debug("machine not suggested", machine=machine.name, error=str(error))
