"""Run one job through LAVA's dispatcher on this machine (``lava-run``).

The job, the device dictionary, ``lava-run``'s log (JSON lines, as it prints them) and its
output directory stay in one directory per machine; the command's output is copied to this
process's stdout as the log brings it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from rvforge import BuildContext, InputError, ToolMissingError

from rvforge_qemu.lava.device import device_dictionary
from rvforge_qemu.lava.job import JobSpec, Markers, job_document, job_seconds, render
from rvforge_qemu.lava.results import LavaRun, parse, record_of
from rvforge_qemu.lava.schema import validate_job
from rvforge_qemu.qemubin import SystemQemu

LAVA_RUN = "lava-run"
INSTALL_HINT = "sudo apt-get install --no-install-recommends lava-dispatcher"
JOB_FILE = "job.yaml"
DEVICE_FILE = "device.yaml"
LOG_FILE = "lava.log"
RESULT_FILE = "result.json"
GRACE_SECONDS = 60.0
WORK_DIR = Path("/var/lib/lava/dispatcher/tmp")
"""Where lava-run downloads a job's files (fixed in lava-dispatcher 2023.01)."""


def find_lava_run() -> str:
    """``lava-run`` on PATH.

    :raises ToolMissingError: (exit 125) with the ``apt-get install`` line.
    """
    found = shutil.which(LAVA_RUN)
    if found is None:
        raise ToolMissingError(f"{LAVA_RUN} is not installed (not on PATH): install LAVA's "
                               f"dispatcher with `{INSTALL_HINT}`")
    if WORK_DIR.is_dir() and not os.access(WORK_DIR, os.W_OK | os.X_OK):
        raise ToolMissingError(f"{LAVA_RUN} keeps each job's files in {WORK_DIR}, which this "
                               "user cannot write: run as root, as LAVA's workers do, or "
                               f"make it writable (sudo chmod 1777 {WORK_DIR})")
    return found


def dispatch(spec: JobSpec, qemu: SystemQemu, directory: Path, ctx: BuildContext,
             *, stream: IO[bytes] | None = None) -> LavaRun:
    """Write ``spec``'s job and device dictionary into ``directory``, check the job against
    LAVA's schema, run it with ``lava-run`` and read its log back.

    :param stream: where the command's output goes as it arrives (default: stdout).
    """
    lava_run = find_lava_run()
    directory.mkdir(parents=True, exist_ok=True)
    job_text = render([job_document(spec)])
    job = write_text(directory / JOB_FILE, job_text)
    validate_job(job_text, str(job))
    device = write_text(directory / DEVICE_FILE, render([device_dictionary(spec, qemu)]))
    argv = [lava_run, "--job-id", f"rvforge-{secrets.token_hex(6)}",
            "--output-dir", str(directory / "lava"), "--device", str(device), str(job)]
    ctx.log.info("lava-run", machine=spec.machine, directory=str(directory))
    log_path = directory / LOG_FILE
    echo = _output_echo(stream or sys.stdout.buffer, spec.markers)
    with open(log_path, "w", encoding="utf-8") as log:

        def each_line(line: str) -> None:
            log.write(line)
            echo(line)

        _run(argv, each_line, job_seconds(spec) + GRACE_SECONDS, directory)
    try:
        result = parse(log_path.read_text(encoding="utf-8"), spec.machine, str(log_path))
    except InputError:  # lava-run failed before it logged (a traceback, nothing)
        result = LavaRun(spec.machine, "incomplete", None, None,
                         reason=f"lava-run wrote no LAVA log; see {log_path}")
    write_text(directory / RESULT_FILE, json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _run(argv: list[str], each_line: Callable[[str], Any], timeout: float,
         directory: Path) -> None:
    """Run ``argv`` in its own process group, each log line to ``each_line``; the group
    (``lava-run`` and its QEMU) is ended however this returns."""
    with open(directory / "lava-run.stdout", "w", encoding="utf-8") as stdout:
        process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                   encoding="utf-8", errors="replace",
                                   start_new_session=True)
    timer = _Timer(process, timeout)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # lava-run logs on stderr, one JSON record a line
            each_line(line)
        process.wait()
    finally:
        timer.cancel()
        _end_group(process)


class _Timer:
    """Ends a process group that outlives the job's own timeouts."""

    def __init__(self, process: subprocess.Popen[str], seconds: float) -> None:
        import threading

        self._timer = threading.Timer(seconds, _end_group, (process,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


def _end_group(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
            process.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _output_echo(stream: IO[bytes], markers: Markers) -> Callable[[str], None]:
    """A callback copying the command's output lines (between the markers) of the log."""
    inside = False

    def echo(line: str) -> None:
        nonlocal inside
        record = record_of(line) or {}
        message = record.get("msg")
        if record.get("lvl") != "target" or not isinstance(message, str):
            return
        if message.strip() == markers.begin:
            inside = True
        elif inside and markers.status.match(message):
            inside = False
        elif inside:
            stream.write(message.encode() + b"\n")
            stream.flush()

    return echo


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name (never half-written)."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)
    return path
