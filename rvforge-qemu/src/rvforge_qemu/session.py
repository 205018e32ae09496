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

    def run(self, argv: list[str] | str, *, timeout: float | None = None,
            stdout: Callable[[bytes], None] | None = None,
            stderr: Callable[[bytes], None] | None = None) -> RunResult:
        """Run ``argv`` (a list of words, or one shell script) in the guest and return its
        status, stdout and stderr (also given to the ``stdout``/``stderr`` callbacks as they
        arrive). A command that outlives ``timeout`` leaves the guest busy: the result has
        ``status=None`` and later calls raise."""
        if self._broken:
            raise BootFailedError(f"the guest can no longer run commands: {self._broken}")
        script = argv if isinstance(argv, str) else command_script(argv)
        out, err = bytearray(), bytearray()
        seen = len(self._guest.console.sigills)
        start = time.monotonic()
        limit = self._options.timeout if timeout is None else timeout
        result = RunResult(ok=False, console_log=self._guest.console.log_path)
        try:
            result.status = self._guest.execute(
                script, start + limit,
                _tee(sink(out, self._options.stream, err=False), stdout),
                _tee(sink(err, self._options.stream, err=True), stderr))
            result.ok = True
        except GuestFailure as failure:
            self._broken = result.reason = f"{failure} (timeout {limit:g} s)"
        result.seconds = time.monotonic() - start
        result.stdout, result.stderr = bytes(out), bytes(err)
        result.console_tail = self._guest.console.lines()
        result.diagnosis = self._diagnose(self._guest.console.sigills[seen:])
        return result


def _tee(first: Callable[[bytes], None], then: Callable[[bytes], None] | None
         ) -> Callable[[bytes], None]:
    """``first``, and ``then`` too when there is one."""
    if then is None:
        return first

    def both(data: bytes) -> None:
        first(data)
        then(data)

    return both
