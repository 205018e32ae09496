"""Starting a prepared ``qemu-virt`` launch: a ``with`` block owning the running
:class:`~rvforge_qemu.guest.Guest`, restored from its snapshot when the launch has one
(:mod:`rvforge_qemu.warm`), else booted, restarting QEMU when the kernel stays silent."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from rvforge import BuildContext

from rvforge_qemu.guest import Guest, channel_args
from rvforge_qemu.prepared import PreparedLaunch
from rvforge_qemu.prestart import PrestartedQemu
from rvforge_qemu.warm import start_args, try_restore

KERNEL_START_SECONDS = 90.0
"""A QEMU whose kernel has printed nothing this long after starting is restarted (the kernel
prints within seconds even on a loaded machine)."""
START_ATTEMPTS = 3


class StartedGuest:
    """``with`` block owning a started :class:`Guest` and its socket directory; yields the
    guest and the deadline ``timeout`` seconds from the start. ``echo``: show the console as
    it arrives on stderr (``True``), or on the given stream (the interactive console's
    stdout). ``prestarted``: the restore ``rvforge_prestart`` started for this command
    line (:mod:`rvforge_qemu.prestart`), taken over if it is exactly this launch's."""

    def __init__(self, prepared: PreparedLaunch, timeout: float, ctx: BuildContext, *,
                 echo: bool | BinaryIO = False,
                 prestarted: PrestartedQemu | None = None) -> None:
        self.prepared, self.timeout, self.ctx = prepared, timeout, ctx
        self.echo = sys.stderr.buffer if echo is True else echo or None
        self.prestarted = prestarted
        self._current: Guest | None = None

    def __enter__(self) -> tuple[Guest, float]:
        early = self.prestarted.take() if self.prestarted is not None else None
        if early is not None:  # its sockets' directory is the guest's, whatever happens
            self._tmp, launched = early
        else:
            self._tmp, launched = tempfile.TemporaryDirectory(prefix="rvforge-vm-"), None
        deadline = time.monotonic() + self.timeout
        attempts = START_ATTEMPTS if self.prepared.kernel_speaks else 1
        plan = self.prepared.snapshot
        try:
            if plan is None and launched is not None:
                launched.kill()
            restored = try_restore(self._make, plan, deadline, self.ctx,
                                   launched=launched) if plan else None
            if restored is not None:
                return restored, deadline
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
        guest = self._make([])
        self.ctx.log.debug("starting QEMU", argv=" ".join(self.prepared.argv))
        guest.start(deadline)
        return guest

    def _make(self, extra: list[str]) -> Guest:
        """A :class:`Guest` for the prepared command line plus rvforge's channels, the
        QMP socket of a snapshot-capable launch and ``extra``."""
        socket_dir = Path(self._tmp.name)
        qmp = start_args(socket_dir) if self.prepared.snapshot is not None else []
        guest = Guest([*self.prepared.argv, *channel_args(socket_dir), *qmp, *extra],
                      socket_dir, self.prepared.console_log, self.prepared.label,
                      echo=self.echo, adopt=self.ctx.cancellation.adopt)
        self._current = guest
        return guest

    def __exit__(self, *exc: object) -> None:
        if self._current is not None:
            self._current.kill()
        self._tmp.cleanup()
