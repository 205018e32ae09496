"""The boot stub is a well-formed static riscv64 ELF whose code the real disassembler
reads as the intended syscall sequence (its behaviour is tested by booting an ext4 image
in tests/test_boot.py)."""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

from rvforge_qemu.stub import BASE, SYS, assemble_fresh, assemble_setup, assemble_stub

SCRIPT = "echo from-the-disk-root"


def test_stub_elf_headers(tmp_path: Path) -> None:
    stub = tmp_path / "init"
    stub.write_bytes(assemble_stub(["/lib/modules/virtio_blk.ko"], SCRIPT))
    headers = subprocess.run(["riscv64-linux-gnu-readelf", "-h", "-l", str(stub)],
                             capture_output=True, text=True, check=True).stdout
    assert "EXEC (Executable file)" in headers and "RISC-V" in headers
    assert f"Entry point address:               0x{BASE + 120:x}" in headers
    assert re.search(r"LOAD\s+0x0+ 0x0*10000", headers)
    assert len(stub.read_bytes()) < 4096


def syscalls(program: Path) -> list[str]:
    """The syscalls ``program``'s code makes, in code order (read back with objdump)."""
    listing = subprocess.run(
        ["riscv64-linux-gnu-objdump", "-D", "-b", "binary", "-m", "riscv:rv64",
         "--start-address=0x78", str(program)], capture_output=True, text=True, check=True,
    ).stdout
    calls = []
    number = None
    for line in listing.splitlines():
        if m := re.search(r"add\s+a7,a7,(-?\d+)", line):
            number = int(m.group(1))
        elif line.rstrip().endswith("ecall"):
            assert number is not None, line
            calls.append({v: k for k, v in SYS.items()}[number])
        elif "mv\ta7,a7" in line:
            number = 0
    return calls


def test_stub_code_makes_the_syscalls_in_order(tmp_path: Path) -> None:
    stub = tmp_path / "init"
    stub.write_bytes(assemble_stub(["/lib/modules/a.ko", "/lib/modules/b.ko"], SCRIPT))
    assert syscalls(stub) == [
        "mkdirat", "mount",
        "openat", "finit_module", "close", "openat", "finit_module", "close",
        "mkdirat", "mkdirat", "mkdirat", "mount", "nanosleep",
        "mount", "mkdirat", "mkdirat", "mount",
        "chdir", "mount", "chroot", "chdir", "execve", "write", "write", "exit",
    ]
    assert SCRIPT.encode() in stub.read_bytes()
    assert b"lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work" in stub.read_bytes()


def test_setup_program_loads_modules_then_configures_the_network(tmp_path: Path) -> None:
    setup = tmp_path / "setup"
    setup.write_bytes(assemble_setup(["/.rvforge/modules/a.ko"], net=True))
    assert syscalls(setup) == [
        "openat", "finit_module", "close",
        "socket", "ioctl", "ioctl", "ioctl", "ioctl", "ioctl", "close", "exit",
        "write", "write", "exit",
    ]
    assert b"eth0" in setup.read_bytes() and b"rvforge-setup: " in setup.read_bytes()
    setup.write_bytes(assemble_setup(["/.rvforge/modules/a.ko"], net=False))
    assert "socket" not in syscalls(setup)


def test_fresh_program_reads_its_input_adds_entropy_reseeds_and_sets_the_clock(
        tmp_path: Path) -> None:
    """...and then, on each CPU, arms a timer that expired long ago, so the kernel programs
    every CPU's timer device again (QEMU does not re-arm them on a restore)."""
    fresh = tmp_path / "fresh"
    fresh.write_bytes(assemble_fresh())
    assert syscalls(fresh) == ["read", "openat", "ioctl", "ioctl", "close", "clock_settime",
                               "sched_setaffinity", "timerfd_create", "timerfd_settime",
                               "exit", "write", "write", "exit"]
    # struct rand_pool_info: 512 bits credited for a 64-byte buffer
    assert struct.pack("<ii", 512, 64) + bytes(80) in fresh.read_bytes()
