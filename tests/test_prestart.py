"""A warm ``rvforge run`` starts restoring its guest before the command line is parsed
(:mod:`rvforge_qemu.prestart`), on real QEMU: the same command line's next run is taken
over early and prints what a cold run does; a guess that is not the launch is killed and
the run goes on; hints that anyone but this user could have written, or that name
anything but a plain warm run, start nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from qemu_processes import qemu_running_with

pytestmark = [pytest.mark.qemu]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
QEMUS = ["system", *(["qemu10"] if os.environ.get("RVFORGE_TEST_QEMU10") else [])]
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def image(alpine_initramfs: Path) -> Path:
    return alpine_initramfs


def runner(where: Path, kernel: Path) -> Run:
    """``rvforge -v run --kernel K ARGS...`` in ``where/work`` with the cache
    ``where/cache``."""
    work = where / "work"
    work.mkdir(exist_ok=True)

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RVFORGE, "-v", "run", "--kernel", str(kernel), *args],
                              capture_output=True, text=True, check=False, timeout=600,
                              cwd=work, env={**os.environ,
                                             "RVFORGE_CACHE_DIR": str(where / "cache")})

    return call


@pytest.fixture
def run(tmp_path: Path, kernel: Path) -> Run:
    return runner(tmp_path, kernel)


@pytest.fixture(scope="module")
def remembered(tmp_path_factory: pytest.TempPathFactory, kernel: Path, image: Path
               ) -> tuple[Run, Path, str]:
    """A cache where ``rvforge run IMAGE -- true`` saved its guest and remembered its
    launch: the runner, the hint, and the hint as written."""
    where = tmp_path_factory.mktemp("remembered")
    call = runner(where, kernel)
    for _ in range(2):  # boots and saves; restores and remembers
        assert call(str(image), "--", "true").returncode == 0
    [hint] = hints(where)
    return call, hint, hint.read_text()


def hints(where: Path) -> list[Path]:
    return sorted((where / "cache" / "qemu" / "prestart").glob("*.json"))


@pytest.mark.parametrize("qemu", QEMUS)
def test_the_same_command_line_is_restored_early_and_prints_what_a_cold_run_does(
        run: Run, image: Path, tmp_path: Path, qemu: str) -> None:
    binary = (os.environ["RVFORGE_TEST_QEMU10"] if qemu == "qemu10"
              else shutil.which("qemu-system-riscv64"))
    flags = ["--qemu", str(binary)] if qemu == "qemu10" else []
    script = "cat /etc/alpine-release; echo err >&2; exit 5"
    cold = run(str(image), *flags, "--no-snapshot", "--", "sh", "-c", script)
    assert hints(tmp_path) == []  # a cold run is no warm launch to remember
    saving = run(str(image), *flags, "--", "sh", "-c", script)
    assert "saved the guest's ready state" in saving.stderr
    [hint] = hints(tmp_path)
    assert (hint.stat().st_mode & 0o777, hint.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert Path(json.loads(hint.read_text())["argv"][0]).resolve() == Path(str(binary)).resolve()
    for command in (script, "echo other; exit 0"):  # what follows -- is not the key
        warm = run(str(image), *flags, "--", "sh", "-c", command)
        assert "restored the guest from its snapshot" in warm.stderr
        assert "early=True" in warm.stderr, warm.stderr
    same = run(str(image), *flags, "--", "sh", "-c", script)
    for result in (saving, same):
        assert (result.returncode, result.stdout) == (cold.returncode, cold.stdout) \
            == (5, "3.20.3\n")
        assert "err\n" in result.stderr
    assert qemu_running_with(image) == []


def test_a_guess_that_is_not_the_launch_is_killed_and_the_run_goes_on(
        run: Run, image: Path, tmp_path: Path) -> None:
    """A hint for this command line that starts another VM (here: the same snapshot with
    less memory than the command asks for) is not taken: that QEMU is killed, the run
    restores its own and nothing is left running."""
    assert run(str(image), "--", "true").returncode == 0  # boots, saves
    assert run(str(image), "--", "true").returncode == 0  # restores, remembers
    [hint] = hints(tmp_path)
    fields = json.loads(hint.read_text())
    argv = fields["argv"]
    argv[argv.index("-m") + 1] = "1536M"
    hint.write_text(json.dumps({**fields, "argv": argv}))
    result = run(str(image), "--", "echo", "ok")
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    assert "the early restore was not this launch's; killed" in result.stderr
    assert "early=False" in result.stderr
    assert "-m" in (fields := json.loads(hint.read_text()))["argv"]
    assert fields["argv"][fields["argv"].index("-m") + 1] == "2048M"  # remembered again
    assert qemu_running_with(image) == []


def untrusted(hint: Path, how: str, tmp_path: Path) -> Path:
    """Make ``hint`` one rvforge must not believe (``how``); return the file a started
    program would create."""
    marker = tmp_path / "started"
    fields = json.loads(hint.read_text())
    if how == "another program":
        program = tmp_path / "bin" / "qemu-system-riscv64"
        program.parent.mkdir()
        program.write_text(f"#!/bin/sh\ntouch {marker}\n")
        program.chmod(0o755)
        fields["argv"][0] = str(program)
        fields["argv"] += ["-chardev", f"file,id=x,path={marker}"]
    else:
        wrapper = tmp_path / "bin" / "qemu-system-riscv64-logged"
        wrapper.parent.mkdir()
        wrapper.write_text(f"#!/bin/sh\ntouch {marker}\nexec {fields['argv'][0]} \"$@\"\n")
        wrapper.chmod(0o755)
        fields["argv"][0] = str(wrapper)  # believable but for the way it was written
    hint.write_text(json.dumps(fields))
    if how == "group-writable":
        hint.chmod(0o620)
    elif how == "in a world-writable directory":
        hint.parent.chmod(0o777)
    elif how == "another user's":
        os.chown(hint, 65534, 65534)
    return marker


@pytest.mark.parametrize("how", ["another program", "group-writable",
                                 "in a world-writable directory", "another user's",
                                 "believable"])
def test_hints_only_this_user_could_write_and_of_plain_runs_are_believed(
        remembered: tuple[Run, Path, str], image: Path, tmp_path: Path, how: str) -> None:
    if how == "another user's" and os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    run, hint, written = remembered
    hint.parent.chmod(0o700)
    hint.write_text(written)
    hint.chmod(0o600)
    marker = untrusted(hint, how, tmp_path)
    result = run(str(image), "--", "echo", "ok")
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    deadline = time.monotonic() + 5
    while how == "believable" and not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    # the control: the same wrapper in a hint written as rvforge writes it is started
    assert marker.exists() == (how == "believable"), result.stderr
    assert qemu_running_with(image) == []
