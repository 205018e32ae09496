"""Processes: whether one is running (:func:`is_running`), and stopping the ones a piece of
work started in other threads (:class:`Cancellation`).

A pid that rvforge wrote into a name (``.NAME.TOKEN.PID.part``, ``rvforge-PID-*``) or a
record (a kept guest's keeper) is running while :func:`is_running` says so; the sweeps and
``ps`` remove what belonged to processes that are not.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

__all__ = ["Cancellation", "is_running"]


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited: another user's process counts
    (``kill`` says EPERM), a zombie (killed, not yet reaped) does not, and neither does a
    number that cannot be a pid (0, negative, too large)."""
    if pid <= 0:
        return False  # kill(0, ...) and kill(-N, ...) address process groups, not a pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's: it exists; a zombie of theirs is checked below all the same
    except OverflowError:
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process nobody has reaped (a container's init may never) still answers
    ``kill(pid, 0)``: its state in ``/proc/PID/stat`` says it is dead."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rpartition(")")[2].split()[:1] == ["Z"]


class Cancellation:
    """A request, from one thread, that work running in others stop: the workers check
    :meth:`is_set` between steps, and :meth:`cancel` kills the process group of every
    process they registered with :meth:`adopt` (QEMU), so a worker waiting on one wakes at
    once and cleans up on its own thread, as after Ctrl-C in a single run."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []

    def is_set(self) -> bool:
        return self._event.is_set()

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """Kill ``process``'s group at :meth:`cancel` (at once if it was already
        cancelled). ``process`` leads its own group (``start_new_session=True``)."""
        with self._lock:
            self._processes = [p for p in self._processes if p.poll() is None]
            self._processes.append(process)
            if self._event.is_set():
                _kill_group(process)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            for process in self._processes:
                _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:  # not reaped: its pid is still its own
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
