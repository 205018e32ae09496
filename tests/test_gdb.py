"""docs/qemu.md's user-space debugging recipe, for real: a static ``-g`` program on a
share, ``rvforge run --gdb --halted``, and ``gdb-multiarch`` stopping at ``main`` with a
hardware breakpoint, going on to the next line and printing a local, then letting the
program finish."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
HELLO = """#include <stdio.h>

int main(int argc, char **argv)
{
    int answer = 6 * 7;
    printf("hello from %s: %d\\n", argv[0], answer);
    return 0;
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gdb_stops_at_main_of_a_static_program_on_a_share(
        alpine_tarball: Path, riscv_cc: Callable[..., Path], tmp_path: Path) -> None:
    if shutil.which("gdb-multiarch") is None:
        pytest.fail("gdb-multiarch is missing: apt-get install gdb-multiarch (.ci/run does)")
    build = tmp_path / "build"
    build.mkdir()
    shutil.copy(riscv_cc(HELLO, "hello-g", "-g", "-O0", "-static"), build / "hello")
    image = tmp_path / "alpine.cpio.gz"
    subprocess.run([RVFORGE, "build", "--provider", "local", "--source", str(alpine_tarball),
                    "-o", str(image)], check=True, capture_output=True, timeout=300)
    port = free_port()
    guest = subprocess.Popen(
        [RVFORGE, "run", str(image), "--share", f"{build}:/mnt/build", "--gdb-port",
         str(port), "--halted", "--timeout", "400", "--", "/mnt/build/hello"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        gdb = subprocess.run(
            ["gdb-multiarch", "-nx", "-batch", "-ex", "set confirm off",
             "-ex", "set tcp connect-timeout 300",  # until QEMU listens
             "-ex", f"target remote 127.0.0.1:{port}", "-ex", "hbreak main",
             # a breakpoint, not `next`: a step over a first-touch page fault lands
             # in the kernel (docs/qemu.md)
             "-ex", "continue", "-ex", "hbreak 6", "-ex", "continue",
             "-ex", "print answer", "-ex", "delete",
             "-ex", "continue", str(build / "hello")],
            capture_output=True, text=True, timeout=400, cwd=build,
            env={**os.environ, "HOME": str(tmp_path)})
        out, err = guest.communicate(timeout=120)
    finally:
        guest.kill()
    assert "Breakpoint 1, main (argc=1, argv=" in gdb.stdout, gdb.stdout + gdb.stderr
    assert "hello-g.c:5\n5\t    int answer = 6 * 7;" in gdb.stdout, gdb.stdout
    assert "Breakpoint 2, main (argc=1, argv=" in gdb.stdout, gdb.stdout
    assert "$1 = 42" in gdb.stdout, gdb.stdout
    assert (guest.returncode, out) == (0, "hello from /mnt/build/hello: 42\n"), err
