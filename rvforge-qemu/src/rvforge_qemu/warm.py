"""Warm starts: a guest restored from its saved ready state instead of booted.

The life cycle (see docs/qemu.md, "Snapshots"):

1. a snapshot-capable boot leaves the shares off the kernel command line (the 9p devices
   are there, unmounted) and opens a QMP socket;
2. at the ready marker, the first such boot of a configuration writes the refresh program
   into the guest's ``/run`` (:func:`rvforge_qemu.fresh.install_script`), saves the VM
   (:meth:`Qmp.save`) and resumes it; the store publishes the file under the key
   (:mod:`rvforge_qemu.snapshots`);
3. a later start with the same key runs QEMU with the same command line plus
   ``-incoming``; the VM is resumed once loaded. A snapshot QEMU refuses (damaged,
   foreign) is removed and the start falls back to a cold boot, with one log line;
4. a restored guest is then refreshed before its first command (:mod:`rvforge_qemu.fresh`:
   entropy and clock, by running that program; ``run`` folds it into the command's own
   request, :func:`run_refreshed`), and every snapshot-capable start, cold or warm, gets
   this run's shares mounted, so what a command sees does not depend on whether the guest
   was restored.

QEMU 7.2 to 10.0 restores each CPU's ``stimecmp``/``mtimecmp`` without re-arming the
timer behind it, so a restored CPU would wait for its lost timer event for ever; the
refresh program makes the kernel program every CPU's timer again
(:func:`rvforge_qemu.stub.assemble_fresh`).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rvforge import BuildContext

from rvforge_qemu.devices import Share
from rvforge_qemu.fresh import fresh_script, install_script
from rvforge_qemu.guest import Guest, GuestFailure, Launched
from rvforge_qemu.qmp import Qmp, QmpError, incoming_args, qmp_args
from rvforge_qemu.snapshots import Snapshot, SnapshotKey, SnapshotStore

QMP_SOCKET = "qmp"
LOAD_POLL_SECONDS = 0.003
"""How often a restore asks whether QEMU has loaded the state (QEMU answers between the
chunks it loads, so asking is cheap; every wait here is a wait of the whole run)."""
SAVE_SECONDS = 120.0
"""A save taking longer than this is abandoned (the guest goes on unsaved)."""


@dataclass
class SnapshotPlan:
    """How one start uses the snapshot store.

    :param restore: start from the snapshot when there is one (``run``); ``boot`` boots
        cold.
    :param save: save the ready state when no snapshot exists yet.
    """

    store: SnapshotStore
    key: SnapshotKey
    shares: tuple[Share, ...] = ()
    restore: bool = True
    save: bool = True
    restored: bool = False
    """Set once the guest came from a snapshot."""
    timings: dict[str, float] = field(default_factory=dict)

    def exists(self) -> bool:
        """Whether the store has a snapshot under this key (not yet validated)."""
        return (self.store.root / self.key.digest).is_dir()


def start_args(socket_dir: Path) -> list[str]:
    """QEMU arguments every snapshot-capable start adds (the QMP socket)."""
    return qmp_args(socket_dir / QMP_SOCKET)


def try_restore(make_guest: Callable[[list[str]], Guest], plan: SnapshotPlan,
                deadline: float, ctx: BuildContext, *,
                launched: Launched | None = None) -> Guest | None:
    """A guest restored from ``plan``'s snapshot and running, or ``None`` (no snapshot,
    or it could not be restored: then it is removed and the reason logged).

    :param make_guest: builds the :class:`Guest` for QEMU arguments added to the boot's.
    :param launched: a QEMU started before the command line was parsed
        (:mod:`rvforge_qemu.prestart`): taken as this guest's if its command line is
        exactly the one this restore starts, else killed.
    """
    snapshot = plan.store.find(plan.key) if plan.restore else None
    guest = make_guest(incoming_args(snapshot.state)) if snapshot is not None else None
    if launched is not None and (guest is None or launched.argv != guest.argv):
        ctx.log.debug("the early restore was not this launch's; killed")
        launched.kill()
        launched = None
    if snapshot is None or guest is None:
        return None
    started = launched.started if launched is not None else time.monotonic()
    saved = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snapshot.meta.get("created", 0)))
    guest.console.replay(snapshot.console(), f"[rvforge] restored from the snapshot saved "
                                             f"{saved} ({snapshot.directory})")
    try:
        guest.start(deadline, restored=True, launched=launched)
        _resume(guest, deadline)
    except (GuestFailure, QmpError) as failure:
        guest.kill()
        ctx.log.warning(f"snapshot not restored ({_first_line(failure)}); booting cold",
                        snapshot=str(snapshot.directory))
        plan.store.discard(snapshot.directory)
        return None
    plan.restored = True
    plan.timings["restore"] = time.monotonic() - started
    ctx.log.info("restored the guest from its snapshot",
                 seconds=round(plan.timings["restore"], 2), early=launched is not None)
    return guest


def _resume(guest: Guest, deadline: float) -> None:
    """Wait for QEMU to load the state, then let the guest run."""
    with Qmp(guest.socket_dir / QMP_SOCKET, deadline, alive=guest.alive) as qmp:
        while (status := qmp.status(deadline)) == "inmigrate":
            if guest.process is not None and guest.process.poll() is not None:
                raise GuestFailure("QEMU exited while loading the snapshot")
            time.sleep(LOAD_POLL_SECONDS)
        if status in ("paused", "postmigrate", "prelaunch"):
            qmp.command("cont", deadline=deadline)
        elif status != "running":
            raise GuestFailure(f"the restored VM is {status!r}, not running")


def save_ready(guest: Guest, plan: SnapshotPlan, image: str, ctx: BuildContext) -> Snapshot | None:
    """Save the ready guest's state into the store (when ``plan`` asks and none exists),
    with the refresh program written into it first, then let it run on. A failed save is a
    warning: the run goes on unsaved."""
    if not plan.save or plan.restored or plan.exists():
        return None
    started = time.monotonic()
    deadline = started + SAVE_SECONDS
    try:
        _request(guest, install_script(), deadline)
    except GuestFailure as failure:
        ctx.log.warning(f"could not save the guest's ready state ({failure})")
        return None
    state = plan.store.new_state(plan.key)
    try:
        with Qmp(guest.socket_dir / QMP_SOCKET, deadline, alive=guest.alive) as qmp:
            try:
                qmp.save(state, deadline)
            finally:
                qmp.command("cont", deadline=deadline)
    except QmpError as error:
        ctx.log.warning(f"could not save the guest's ready state ({error})")
        plan.store.discard(state.parent)
        return None
    seconds = time.monotonic() - started
    final = plan.store.commit(plan.key, state, guest.console.log_path, image=image,
                              save_seconds=round(seconds, 3))
    if final is None:
        return None
    plan.timings["save"] = seconds
    size = (final / "state.zst").stat().st_size
    ctx.log.info("saved the guest's ready state", seconds=round(seconds, 2),
                 mb=round(size / 1e6, 1), snapshot=str(final))
    return Snapshot(final, {})


def freshen(guest: Guest, plan: SnapshotPlan, deadline: float) -> None:
    """Reseed a restored guest's randomness and set its clock; mount this run's shares.

    :raises GuestFailure: naming the step that failed.
    """
    started = time.monotonic()
    if script := fresh_script(plan.shares, restored=plan.restored):
        _request(guest, script, deadline)
    plan.timings["fresh"] = time.monotonic() - started


def run_refreshed(guest: Guest, plan: SnapshotPlan, script: str, deadline: float,
                  stdout: Callable[[bytes], None], stderr: Callable[[bytes], None]) -> int:
    """:func:`freshen` a restored guest and run ``script`` in the same request (a request
    costs the guest ~0.05-0.1 s under TCG); return the script's exit status.

    The refresh prints a marker of this run on stdout once done; what comes before it is
    the refresh's, and without it the request was a failed refresh, not the command's
    status.

    :raises GuestFailure: naming the refresh step that failed.
    """
    marker = f"RVFORGE-FRESH-{secrets.token_hex(8)}"
    gate = _RefreshGate(f"{marker}\n".encode(), stdout, stderr)
    started = time.monotonic()
    status = guest.execute(f"{fresh_script(plan.shares, restored=True)}echo {marker}\n{script}",
                           deadline, gate.out, gate.err)
    if gate.opened is None:
        text = (bytes(gate.held_err) + bytes(gate.held_out)).decode("utf-8", "replace").strip()
        raise GuestFailure(f"the guest could not set up the boot: {text or f'status {status}'}")
    plan.timings["fresh"] = gate.opened - started
    return status


class _RefreshGate:
    """Holds a folded request's output until the refresh's ``marker`` line has come on
    stdout, then passes everything after it on (stderr held meanwhile is the command's:
    the refresh writes there only when it fails, and then prints no marker)."""

    def __init__(self, marker: bytes, stdout: Callable[[bytes], None],
                 stderr: Callable[[bytes], None]) -> None:
        self.marker, self.stdout, self.stderr = marker, stdout, stderr
        self.held_out, self.held_err = bytearray(), bytearray()
        self.opened: float | None = None

    def out(self, data: bytes) -> None:
        if self.opened is not None:
            self.stdout(data)
            return
        self.held_out += data
        at = self.held_out.find(self.marker)
        if at < 0:
            return
        self.opened = time.monotonic()
        after = bytes(self.held_out[at + len(self.marker):])
        if self.held_err:
            self.stderr(bytes(self.held_err))
        if after:
            self.stdout(after)

    def err(self, data: bytes) -> None:
        if self.opened is not None:
            self.stderr(data)
        else:
            self.held_err += data


def _request(guest: Guest, script: str, deadline: float) -> None:
    errors = bytearray()
    status = guest.execute(script, deadline, lambda _: None, errors.extend)
    if status != 0:
        text = errors.decode("utf-8", "replace").strip() or f"status {status}"
        raise GuestFailure(f"the guest could not set up the boot: {text}")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
