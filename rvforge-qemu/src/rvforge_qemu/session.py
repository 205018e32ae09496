"""A booted guest that runs many commands: what the pytest plugin's fixture holds."""

from __future__ import annotations

import time
from collections.abc import Callable

from rvforge import BootFailedError, RunResult

from rvforge_qemu.console import IllegalInstruction
from rvforge_qemu.guest import Guest, GuestFailure
from rvforge_qemu.options import LaunchOptions, command_script, sink


class Session:
    """Commands in one running guest (from :meth:`QemuVirt.session`).

    :param guest: the ready guest.
    :param options: the launch options (``timeout`` is each command's default timeout).
    :param diagnose: explains illegal-instruction reports from the console.
    """

    def __init__(self, guest: Guest, options: LaunchOptions,
                 diagnose: Callable[[list[IllegalInstruction]], list[str]]) -> None:
        self._guest = guest
        self._options = options
        self._diagnose = diagnose
        self._broken = ""

    @property
    def console_log(self) -> str:
        return str(self._guest.console.log_path)

    def run(self, argv: list[str] | str, *, timeout: float | None = None) -> RunResult:
        """Run ``argv`` (a list of words, or one shell script) in the guest and return its
        status, stdout and stderr. A command that outlives ``timeout`` leaves the guest
        busy: the result has ``status=None`` and later calls raise."""
        if self._broken:
            raise BootFailedError(f"the guest can no longer run commands: {self._broken}")
        script = argv if isinstance(argv, str) else command_script(argv)
        stdout, stderr = bytearray(), bytearray()
        seen = len(self._guest.console.sigills)
        start = time.monotonic()
        limit = self._options.timeout if timeout is None else timeout
        result = RunResult(ok=False, console_log=self._guest.console.log_path)
        try:
            result.status = self._guest.execute(
                script, start + limit, sink(stdout, self._options.stream, err=False),
                sink(stderr, self._options.stream, err=True))
            result.ok = True
        except GuestFailure as failure:
            self._broken = result.reason = f"{failure} (timeout {limit:g} s)"
        result.seconds = time.monotonic() - start
        result.stdout, result.stderr = bytes(stdout), bytes(stderr)
        result.console_tail = self._guest.console.lines()
        result.diagnosis = self._diagnose(self._guest.console.sigills[seen:])
        return result
