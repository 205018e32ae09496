"""Whether a process is running (one check for the sweeps, ``cache`` and kept guests) and
cancelling work in other threads, with real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from rvforge import processes
from rvforge.processes import Cancellation, is_running

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def test_a_living_process_is_running() -> None:
    assert is_running(os.getpid())
    with subprocess.Popen(["sleep", "60"]) as child:
        assert is_running(child.pid)
        child.kill()


def test_a_process_that_exited_and_was_reaped_is_not() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert not is_running(child.pid)


def test_a_zombie_is_not_running_though_kill_0_answers_for_it() -> None:
    """A killed keeper nobody reaped looked alive to ``kill(pid, 0)``."""
    child = subprocess.Popen(["true"])
    try:
        wait_for(lambda: state(child.pid) == "Z")
        os.kill(child.pid, 0)  # the kernel still answers for it
        assert not is_running(child.pid)
    finally:
        child.wait()


@pytest.mark.parametrize("pid", [0, -1, 2**31, 2**40])
def test_a_number_that_cannot_be_a_pid_is_not_running(pid: int) -> None:
    assert not is_running(pid)


CHECK = """
import errno, os, sys
from processes import is_running
pid = int(sys.argv[1])
try:
    os.kill(pid, 0)
    print("no error", is_running(pid))
except OSError as error:
    print(errno.errorcode[error.errno], is_running(pid))
"""


def test_another_users_process_is_running() -> None:
    """``kill`` answers EPERM for a process of another user: it exists."""
    # the module alone (it needs only the standard library) in a directory anyone reads:
    # the checkout may be in a 0700 directory that uid 65534 cannot import rvforge from
    public = Path(tempfile.mkdtemp(prefix="rvforge-processes-"))
    try:
        public.chmod(0o755)
        (public / "processes.py").write_bytes(Path(processes.__file__).read_bytes())
        if os.geteuid() != 0:  # init is root's
            command, target = [sys.executable, "-c", CHECK], 1
        else:  # as nobody, about this (root's) process
            command, target = [*NOBODY, sys.executable, "-c", CHECK], os.getpid()
        result = subprocess.run([*command, str(target)], capture_output=True, text=True,
                                check=False, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(public)})
    finally:
        shutil.rmtree(public)
    if result.returncode != 0 and "Permission denied" in result.stderr:
        pytest.skip(f"{sys.executable} is not readable by uid 65534")
    assert result.stdout.split() == ["EPERM", "True"], result.stderr


def test_cancelling_from_another_thread_kills_the_adopted_process_groups() -> None:
    cancellation = Cancellation()
    group = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"],
                             start_new_session=True)
    cancellation.adopt(group)
    assert not cancellation.is_set() and group.poll() is None
    canceller = threading.Thread(target=cancellation.cancel)
    canceller.start()
    assert group.wait(timeout=30) == -9
    canceller.join(timeout=30)
    assert cancellation.is_set()
    wait_for(lambda: not any(_in_group(group.pid)))  # the background sleep too


def test_a_process_adopted_after_the_cancel_is_killed_at_once() -> None:
    cancellation = Cancellation()
    cancellation.cancel()
    late = subprocess.Popen(["sleep", "60"], start_new_session=True)
    cancellation.adopt(late)
    assert late.wait(timeout=30) == -9


def _in_group(pgid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(proc.name))
    return found
