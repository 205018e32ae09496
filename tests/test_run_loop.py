"""The run loop as a user meets it, through the real ``rvforge`` executable, the real QEMU
and Debian's real kernel: a command's output alone on stdout and stderr, and one true line
(with its own exit status) for each way a run goes wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
