"""The console watcher and the SIGILL diagnosis, on a real kernel report."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from rvforge import Machine

from rvforge_qemu.console import KEEP_LOGS, KEEP_SECONDS, ConsoleWatch, new_log_path
from rvforge_qemu.sigill import diagnose, isa_extensions

# Debian 6.12.117 under QEMU 7.2, -cpu rv64, running a static -march=rv64gcv binary.
REPORT = b"""\
[    3.115361] Run /init as init process
RVFORGE-READY
[    3.991593] vsum[150]: unhandled signal 4 code 0x1 at 0x0000000000010556 in vsum[556,10000+61000]
[    3.992726] CPU: 1 UID: 0 PID: 150 Comm: vsum Not tainted 6.12.117+deb13-riscv64 #1
[    3.993548] epc : 0000000000010556 ra : 00000000000106bc sp : 00007fffe925cea0
[    3.997127] status: 0000000200004020 badaddr: 000000000d0075d7 cause: 0000000000000002
"""
QEMU_VIRT = Machine("qemu-virt", "qemu-virt",
                    "rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc")
QEMU_VIRT_V = Machine("qemu-virt-v", "qemu-virt",
                      "rv64imafdcvh_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc")


def watch(tmp_path: Path, *chunks: bytes) -> ConsoleWatch:
    console = ConsoleWatch(tmp_path / "console.log")
    for chunk in chunks:
        console.feed(chunk)
    console.close()
    return console


def test_report_split_anywhere_is_parsed_once(tmp_path: Path) -> None:
    for cut in (1, 57, 150, 200, len(REPORT) - 3):
        console = watch(tmp_path, REPORT[:cut], REPORT[cut:])
        assert console.ready
        assert len(console.sigills) == 1
        event = console.sigills[0]
        assert (event.comm, event.pid, event.pc, event.file, event.offset, event.word) == (
            "vsum", 150, 0x10556, "vsum", 0x556, 0x0D0075D7)
    assert (tmp_path / "console.log").read_bytes() == REPORT


def test_marker_without_newline_and_panic(tmp_path: Path) -> None:
    assert watch(tmp_path, b"boot\nRVFORGE-READY").ready
    console = watch(tmp_path, b"[ 1.0] Kernel panic - not syncing: Attempted to kill init!\n")
    assert console.panic == "Attempted to kill init!"
    assert not console.ready


def test_diagnosis_names_binary_extension_and_fix(tmp_path: Path) -> None:
    events = watch(tmp_path, REPORT).sigills
    messages = diagnose(events, QEMU_VIRT, lambda name: ["/usr/bin/" + name],
                        lambda: [QEMU_VIRT, QEMU_VIRT_V])
    assert len(messages) == 1
    text = messages[0]
    assert "/usr/bin/vsum" in text and "vsetvli" in text and "vector extension V" in text
    assert "--machine qemu-virt-v" in text and "-march=rv64gc" in text


def test_isa_extensions() -> None:
    assert {"i", "m", "a", "f", "d", "c", "zicsr"} <= isa_extensions("rv64gc_zicsr")
    assert "v" not in isa_extensions(QEMU_VIRT.isa)
    assert {"v", "zve64d", "zba"} <= isa_extensions(QEMU_VIRT_V.isa)


def test_setup_errors_of_the_init_are_noticed(tmp_path: Path) -> None:
    watch = ConsoleWatch(tmp_path / "log")
    watch.feed(b"rvforge: cannot mount the shared directory rvshare0 on /mnt/x\r\n"
               b"rvforge-setup: loading /.rvforge/modules/9p.ko failed\r\n"
               b"rvforge: first-boot hook /etc/x failed with status 1\r\n")
    assert watch.setup_errors == [
        "rvforge: cannot mount the shared directory rvshare0 on /mnt/x",
        "rvforge-setup: loading /.rvforge/modules/9p.ko failed"]


def test_each_boot_gets_its_own_console_log_and_old_ones_are_pruned(tmp_path: Path) -> None:
    first = new_log_path(tmp_path, "app.cpio.gz.qemu-virt")
    second = new_log_path(tmp_path, "app.cpio.gz.qemu-virt")
    assert first != second and first.parent == tmp_path
    for index in range(KEEP_LOGS + 5):
        old = tmp_path / f"app.cpio.gz.qemu-virt.old{index:02}.log"
        old.write_text("")
        os.utime(old, (time.time() - KEEP_SECONDS - 100 - index,) * 2)
    recent = tmp_path / "app.cpio.gz.qemu-virt.recent.log"
    recent.write_text("")
    other = tmp_path / "other.cpio.gz.qemu-virt.old.log"
    other.write_text("")
    os.utime(other, (time.time() - KEEP_SECONDS - 100,) * 2)
    new_log_path(tmp_path, "app.cpio.gz.qemu-virt")
    left = sorted(p.name for p in tmp_path.glob("app.cpio.gz.qemu-virt.*.log"))
    assert len(left) == KEEP_LOGS - 1
    assert recent.name in left and "app.cpio.gz.qemu-virt.old00.log" in left
    assert f"app.cpio.gz.qemu-virt.old{KEEP_LOGS + 4:02}.log" not in left
    assert other.exists()


def test_diagnosis_names_a_vendor_extension_and_the_board_that_has_it(tmp_path: Path
                                                                      ) -> None:
    from rvforge_qemu.boards import board_profiles

    # the same kernel report, for a th.addsl a0,a1,a2,1 (binutils 2.44: 0x02c5950b)
    report = REPORT.replace(b"vsum", b"thsum").replace(b"000000000d0075d7", b"0000000002c5950b")
    boards = {m.name: m for m in board_profiles(2048)}
    bootable = [m for m in boards.values() if m.launcher]  # as the launcher offers them
    [text] = diagnose(watch(tmp_path, report).sigills, boards["starfive-jh7110"],
                      lambda name: ["/usr/bin/" + name], lambda: bootable)
    assert "0x02c5950b is a T-Head custom instruction, from XTheadBa (T-Head address " \
        "calculation), which machine 'starfive-jh7110'" in text
    assert "--machine thead-c906" in text  # the first bootable board with XTheadBa


def test_a_console_log_on_a_full_disk_is_named_in_the_error() -> None:
    """``--console-log /dev/full``: the error names the log, not just ``No space left``."""
    watch = ConsoleWatch(Path("/dev/full"))
    with pytest.raises(OSError) as info:
        watch.feed(b"OpenSBI v1.2\n")
    assert info.value.filename == "/dev/full" and info.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as info:
        watch.close()
    assert info.value.filename == "/dev/full"
