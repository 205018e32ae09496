"""One command across machines: ``rvforge run IMAGE --machine A,B,C -- CMD`` and the pytest
plugin's ``--rvforge-machine A,B``.

:func:`matrix_machines` turns ``A,B,C`` (or ``all``: every profile this host can boot) into
profile names; :func:`run_matrix` prepares a launch per machine (so a bad flag or an
unknown machine fails before any guest starts), runs the command on each with a bounded
pool (:class:`CpuBudget`: as many guests at once as the host's cores hold their CPUs) and
returns a :class:`MachineRun` per machine, in the order given. Interrupted (Ctrl-C,
SIGTERM) or failing with an unexpected error, it cancels the others
(:class:`~rvforge.processes.Cancellation`): rows waiting for cores never start, and each
running row's QEMU is killed, so its own thread sees the guest gone and cleans up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvforge.errors import ExitCode, RvforgeError, UsageError
from rvforge.processes import Cancellation
from rvforge.progress import Progress

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.launching import Launch

ALL_MACHINES = "all"
"""``--machine all``: every profile this host can boot."""

COMMAND_FAILED = 1
"""The exit status of a matrix run in which every machine ran the command to its end and
some gave a non-zero status."""


@dataclass
class MachineRun:
    """What running the command gave on one machine.

    :param machine: the profile's name.
    :param status: the command's exit status; ``None`` when it did not run to its end.
    :param seconds: from the launch to the command's end (or the failure).
    :param stdout: what the command wrote to its standard output.
    :param stderr: what it wrote to its standard error.
    :param diagnosis: explanations of illegal instructions (the launcher's).
    :param reason: why it did not run to its end (boot failure, timeout, unavailable).
    :param console_log: the machine's serial console log, when the launcher kept one.
    """

    machine: str
    status: int | None
    seconds: float
    stdout: bytes = b""
    stderr: bytes = b""
    diagnosis: list[str] = field(default_factory=list)
    reason: str = ""
    console_log: Path | None = None

    @property
    def state(self) -> str:
        """``ok``, ``exit N`` or ``failed`` (did not run to its end)."""
        if self.status is None:
            return "failed"
        return "ok" if self.status == 0 else f"exit {self.status}"

    def first_line(self) -> str:
        """The first line of the diagnosis, else of why it did not finish, else of the
        command's output (stdout, then stderr); ``""`` when there is none."""
        for text in (*self.diagnosis, self.reason,
                     self.stdout.decode(errors="replace"),
                     self.stderr.decode(errors="replace")):
            line = text.strip().split("\n", 1)[0].strip()
            if line:
                return line
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "status": self.status,
                "seconds": round(self.seconds, 2),
                "stdout": self.stdout.decode(errors="replace"),
                "stderr": self.stderr.decode(errors="replace"),
                "diagnosis": list(self.diagnosis), "reason": self.reason or None,
                "console_log": str(self.console_log) if self.console_log else None}


@dataclass(frozen=True)
class LeftOut:
    """A profile ``--machine all`` did not run on, and why."""

    machine: str
    reason: str


def is_matrix(machine: str | None) -> bool:
    """Whether ``--machine`` names several machines (``A,B``) or ``all``."""
    return machine is not None and ("," in machine or machine.strip() == ALL_MACHINES)


def matrix_machines(spec: str, ctx: BuildContext, values: Mapping[str, Any] | None = None
                    ) -> tuple[list[str], list[LeftOut]]:
    """The profile names ``spec`` stands for (``A,B,C`` in order, each once; ``all``:
    :func:`bootable_machines`, after laying over ``ctx`` the settings the launcher option
    ``values`` stand for: ``--qemu`` decides what boots) and, for ``all``, the profiles
    left out with why.

    :raises UsageError: an empty list, or a name no plugin or ``rvforge.toml`` defines
        (the registry's message lists the known ones).
    """
    if spec.strip() == ALL_MACHINES:
        from rvforge.launching import apply_launcher_settings

        apply_launcher_settings(ctx, values or {}, "run")
        return bootable_machines(ctx)
    names = list(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    if not names:
        raise UsageError(f"--machine {spec!r} names no machine: give A,B,C or all")
    for name in names:
        ctx.registry.machines.get(name)  # unknown: UsageError naming the known ones
    return names, []


def bootable_machines(ctx: BuildContext) -> tuple[list[str], list[LeftOut]]:
    """Every profile whose launcher is installed and can start it here (its CPU resolves
    and its host tool is found), and the others with why not."""
    from rvforge.machines import AUTO_MACHINE

    names: list[str] = []
    left: list[LeftOut] = []
    for reg in ctx.registry.machines:
        if reg.name == AUTO_MACHINE:  # a pick, not a machine
            continue
        why = (unavailable(reg.name, ctx) if reg.component.launcher
               else "an audit target only: no launcher boots it")
        if why:
            left.append(LeftOut(reg.name, why))
        else:
            names.append(reg.name)
    if not names:
        why = "; ".join(f"{item.machine}: {item.reason}" for item in left)
        raise UsageError(f"--machine all: no profile can boot here ({why})")
    return names, left


class Cancelled(Exception):
    """The matrix run was cancelled before this row's guest started."""


class CpuBudget:
    """The host's cores shared among guests: a guest takes as many as it has CPUs (at most
    all of them), so one guest always fits."""

    def __init__(self, cores: int | None = None) -> None:
        self.total = max(1, cores if cores is not None else os.cpu_count() or 1)
        self._free = self.total
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, cpus: int, cancellation: Cancellation | None = None) -> Iterator[None]:
        """Wait until ``cpus`` cores are free and hold them for the block.

        :raises Cancelled: ``cancellation`` was set first (checked twice a second)."""
        taken = min(max(1, cpus), self.total)
        with self._changed:
            while not self._changed.wait_for(lambda: self._free >= taken, timeout=0.5):
                if cancellation is not None and cancellation.is_set():
                    raise Cancelled
            if cancellation is not None and cancellation.is_set():
                raise Cancelled
            self._free -= taken
        try:
            yield
        finally:
            with self._changed:
                self._free += taken
                self._changed.notify_all()


def guest_cpus(launch: Launch) -> int:
    """The CPUs ``launch``'s guest gets: the ``cpus`` option (a name every launcher means
    the same by) if given, else the profile's."""
    given = getattr(launch.options, "cpus", None)
    return int(given) if given else launch.machine.cpus


def run_matrix(image: Path | str, argv: Sequence[str], machines: Sequence[str],
               ctx: BuildContext, *, launcher: str | None = None,
               values: Mapping[str, Any] | None = None,
               budget: CpuBudget | None = None) -> list[MachineRun]:
    """Run ``argv`` in ``image`` booted on each of ``machines`` (profile names); a
    :class:`MachineRun` per machine, in the order given. ``values`` apply to every machine
    (:func:`per_machine`).

    Every launch is prepared first, in this thread (:func:`rvforge.prepare_launch`, with
    the command's output collected, not streamed): an option a launcher refuses raises
    before any guest starts. A machine whose own launcher cannot start it here (its CPU
    needs another QEMU) is a run that did not finish, with the reason.
    """
    from rvforge.launching import prepare_launch

    given = {**(values or {}), "stream": False}
    budget = budget or CpuBudget()
    items: list[Launch | MachineRun] = []
    for name in machines:
        why = "" if launcher else unavailable(name, ctx)  # --launcher: its own checks
        if why:
            items.append(MachineRun(name, None, 0.0, reason=why))
            continue
        items.append(prepare_launch(image, ctx, machine=name, launcher=launcher,
                                    values=per_machine(given, name), command="run",
                                    argv=argv))

    cancellation = Cancellation()

    def one(item: Launch | MachineRun) -> MachineRun:
        if isinstance(item, MachineRun):
            return item
        try:
            with budget.hold(guest_cpus(item), cancellation):
                return _run_one(item, list(argv), ctx)
        except Cancelled:
            return MachineRun(item.machine.name, None, 0.0, reason="interrupted")

    outer, outer_cancellation = ctx.progress, ctx.cancellation
    with outer.task(f"running on {len(items)} machines", total=len(items)) as task:
        ctx.progress = Progress(enabled=False)  # one live display: this one
        ctx.cancellation = cancellation  # the launchers hand it the guests they start
        pool = ThreadPoolExecutor(max_workers=len(items) or 1)
        try:
            futures = [pool.submit(one, item) for item in items]
            for future in as_completed(futures):
                future.result()
                task.advance()
        except BaseException:  # Ctrl-C, SIGTERM, a bug: every guest stops, none starts
            cancellation.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            ctx.progress, ctx.cancellation = outer, outer_cancellation
    return [future.result() for future in futures]


def per_machine(values: Mapping[str, Any], machine: str) -> dict[str, Any]:
    """``values`` for one machine of several: a ``console_log`` path gets the machine's
    name before its suffix (``console.log`` → ``console.qemu-virt.log``), so the guests do
    not write one file."""
    log = values.get("console_log")
    if not log:
        return dict(values)
    path = Path(log)
    return {**values, "console_log": path.with_name(f"{path.stem}.{machine}{path.suffix}")}


def unavailable(name: str, ctx: BuildContext) -> str:
    """Why profile ``name`` cannot start here (its launcher is missing, or it lacks the
    CPU: a board on an older QEMU), or ``""``."""
    registry = ctx.registry
    machine = registry.machines.get(name)
    if not machine.launcher:
        return ""  # auto, or an audit target: prepare_launch says what to do
    if machine.launcher not in registry.launchers:
        return f"its launcher {machine.launcher!r} is not installed"
    try:
        registry.launchers.get(machine.launcher)().host_tool(machine, ctx)
        registry.resolve_machine(name, None, ctx)
    except RvforgeError as error:
        return str(error)
    return ""


def _run_one(launch: Launch, argv: list[str], ctx: BuildContext) -> MachineRun:
    started = time.monotonic()
    name = launch.machine.name
    if ctx.cancellation.is_set():  # cancelled while it took its cores
        raise Cancelled
    try:
        result = launch.run(argv, ctx)
    except RvforgeError as error:
        return MachineRun(name, None, time.monotonic() - started, reason=str(error))
    ctx.log.info("machine done", machine=name, status=result.status,
                 seconds=round(result.seconds, 2))
    return MachineRun(name, result.status, result.seconds or time.monotonic() - started,
                      result.stdout, result.stderr, list(result.diagnosis),
                      "" if result.status is not None else result.reason,
                      result.console_log)


def matrix_exit_status(runs: Sequence[MachineRun]) -> int:
    """0 when the command gave 0 on every machine; :data:`~rvforge.ExitCode.BOOT` (4) when
    on some machine it did not run to its end (unavailable here, the boot failed, timed
    out); else :data:`COMMAND_FAILED` (1)."""
    if any(run.status is None for run in runs):
        return int(ExitCode.BOOT)
    return 0 if all(run.status == 0 for run in runs) else COMMAND_FAILED


def matrix_json(runs: Sequence[MachineRun], left_out: Sequence[LeftOut] = ()) -> dict[str, Any]:
    """``{"machines": [record, ...], "left_out": [...]}`` (the record:
    :meth:`MachineRun.to_json`)."""
    return {"machines": [run.to_json() for run in runs],
            "left_out": [{"machine": item.machine, "reason": item.reason}
                         for item in left_out]}


def matrix_table(runs: Sequence[MachineRun], escape: Callable[[str], str] = str) -> str:
    """One row per machine (status, seconds, the first line of the diagnosis or output)
    and a summary line, as ``rvforge audit --machine A,B,C`` prints its rows."""
    width = max([len("machine"), *(len(run.machine) for run in runs)])
    lines = [f"{'machine':<{width}}  {'status':<8}  {'seconds':>7}  first line"]
    for run in runs:
        lines.append(f"{run.machine:<{width}}  {run.state:<8}  {run.seconds:>7.1f}  "
                     f"{escape(run.first_line()) or '-'}")
    bad = sum(1 for run in runs if run.status != 0)
    noun = "machine" if len(runs) == 1 else "machines"
    lines.append(f"{'FAIL' if bad else 'ok'}: {len(runs)} {noun}, {bad} not ok")
    return "\n".join(lines) + "\n"
