"""The run loop as a user meets it, through the real ``rvforge`` executable, the real QEMU
and Debian's real kernel: a command's output alone on stdout and stderr, and one true line
(with its own exit status) for each way a run goes wrong."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rvforge.testing import assert_one_line_error

pytestmark = [pytest.mark.qemu]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))


def cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout)


@pytest.fixture(scope="module")
def alpine(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = tmp_path_factory.mktemp("run-loop") / "alpine.cpio.gz"
    built = cli("build", "--provider", "local", "--source", str(alpine_tarball), "-o",
                str(image))
    assert built.returncode == 0, built.stderr
    return image


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def test_a_busy_gdb_port_suggests_another(alpine: Path, busy_port: int) -> None:
    result = cli("-q", "boot", str(alpine), "--gdb-port", str(busy_port), "--timeout", "120")
    assert_one_line_error(result, 2, f"the gdbstub's port {busy_port} on 127.0.0.1 is in use "
                                     "(another QEMU or debugger?): pick a free one with "
                                     "--gdb-port N")


def test_a_busy_forward_port_says_the_port_is_in_use(alpine: Path, busy_port: int) -> None:
    result = cli("-q", "boot", str(alpine), "--forward", f"{busy_port}:80", "--timeout", "120")
    assert_one_line_error(result, 2, f"--forward {busy_port}:80: port {busy_port} on "
                                     "127.0.0.1 is in use: forward another host port")


def image_with(alpine_tarball: Path, out: Path, *args: str) -> Path:
    built = cli("build", "--provider", "local", "--source", str(alpine_tarball), "--no-audit",
                "-o", str(out), *args)
    assert built.returncode == 0, built.stderr
    return out


def test_run_prints_the_commands_output_and_nothing_of_its_own(alpine: Path) -> None:
    result = cli("run", str(alpine), "--", "sh", "-c", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


@pytest.mark.slow
def test_a_command_that_outlives_the_timeout_is_one_line_exit_4(alpine: Path) -> None:
    # a warm restore (the first run saves the snapshot) reaches the command in seconds even
    # on a loaded machine, so the timeout need not leave room for a cold boot
    warm = cli("run", "-q", str(alpine), "--", "true")
    assert warm.returncode == 0, warm.stderr
    result = cli("run", "-q", str(alpine), "--timeout", "30", "--", "sleep", "1000")
    assert_one_line_error(result, 4, "the command ran for ")
    assert re.search(r"rvforge: error: the command ran for \d+ s and was stopped "
                     r"\(--timeout 30 s\); full console log: ", result.stderr), result.stderr
    assert "RVFORGE-READY" not in result.stderr  # no console tail: the boot was fine


def test_a_halted_boot_without_a_debugger_says_the_cpus_waited(alpine: Path) -> None:
    port = free_port()
    # halted CPUs print nothing however long the wait: a short timeout proves as much
    result = cli("-q", "boot", str(alpine), "--gdb-port", str(port), "--halted",
                 "--timeout", "5")
    assert_one_line_error(
        result, 4, "boot failed: the CPUs were still waiting for a debugger (--halted) when "
                   f"--timeout 5 s ran out: attach one (gdb-multiarch -ex 'target remote "
                   f":{port}') or boot without --halted")


def test_an_x86_64_init_is_refused_before_qemu_starts(alpine_tarball: Path,
                                                      tmp_path: Path) -> None:
    host_true = Path(shutil.which("true") or "/bin/true").resolve()
    image = image_with(alpine_tarball, tmp_path / "x86.cpio.gz", "--no-init", "--overlay",
                       f"{host_true}:/init")
    started = time.monotonic()
    result = cli("run", str(image), "--", "true")
    assert time.monotonic() - started < 20  # no boot: the kernel would panic with error -8
    assert_one_line_error(result, 2, f"{image}: /init is an x86-64 ELF (EM_X86_64), not "
                                     "RISC-V: the riscv64 kernel cannot run it (error -8)")
    assert result.stderr.rstrip().endswith("(--no-check boots it anyway)"), result.stderr


def test_a_missing_init_is_refused_and_no_check_boots_it_anyway(alpine_tarball: Path,
                                                                tmp_path: Path) -> None:
    image = image_with(alpine_tarball, tmp_path / "no-init.cpio.gz", "--no-init")
    refused = cli("-q", "boot", str(image))
    assert_one_line_error(refused, 2, f"{image}: there is no /init: the kernel would panic "
                                      "with 'VFS: Unable to mount root fs'")
    booted = cli("-q", "boot", str(image), "--no-check", "--timeout", "200")
    assert booted.returncode == 4, booted.stderr
    assert "boot failed: kernel panic: " in booted.stderr, booted.stderr


def test_gdb_symbols_for_a_flat_kernel_image_says_plainly_there_are_none(alpine: Path
                                                                         ) -> None:
    """Debian's boot/vmlinux-* given by path is a PE32+ image, not an ELF gdb reads."""
    from rvforge import BuildContext
    from rvforge.registry import build_registry

    from rvforge_qemu.kernels import resolve_kernel

    with BuildContext(build_registry()) as ctx:
        flat = resolve_kernel("auto", ctx).image
    port = free_port()
    result = cli("-q", "boot", str(alpine), "--kernel", str(flat), "--gdb-symbols",
                 "--gdb-port", str(port), "--halted", "--timeout", "5")
    assert result.returncode == 4, result.stderr
    assert (f"--gdb-symbols: kernel {flat} is not an ELF file and its source has no debug "
            "symbols; gdb gets none") in result.stderr, result.stderr
    assert "the CPUs were still waiting for a debugger" in result.stderr
