"""The pieces of a LAVA job that do not need a boot: the line the guest's shell runs (run
by a real POSIX sh), the prompt pattern, and the device dictionary against LAVA's own
device schema (Debian's lava-common, in the system's Python)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from rvforge_qemu.lava.device import device_dictionary
from rvforge_qemu.lava.job import (
    PROMPT,
    PROMPT_PATTERN,
    Image,
    JobSpec,
    Markers,
    job_document,
    kernel_words,
)
from rvforge_qemu.qemubin import SystemQemu

LAVA_PYTHON = Path("/usr/bin/python3")


def spec(**changes: object) -> JobSpec:
    values: dict[str, object] = dict(
        machine="qemu-virt-v", cpu="rv64,v=true,vlen=128,elen=64", memory_mb=2048, cpus=2,
        kernel=Image("file:///k/vmlinux", "a" * 64, "-kernel {kernel}"),
        initramfs=Image("file:///i.cpio.gz", "b" * 64, "-initrd {ramdisk}"),
        append=kernel_words(("console=ttyS0",)), argv=("true",), timeout=60.0,
        qemu_since="7.2", extra_options=("-bios default",))
    values.update(changes)
    return JobSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("argv, status, output", [
    (("true",), 0, []),
    (("sh", "-c", "echo 'a b'; echo c >&2; exit 3"), 3, ["a b", "c"]),
    # output that looks like rvforge's markers (of another job) does not end the command
    (("printf", "%s\\n", "RVFORGE-STATUS-000000000000 9", "x;y"), 0,
     ["RVFORGE-STATUS-000000000000 9", "x;y"]),
    (("cat",), 0, []),  # stdin is /dev/null: nothing waits for the console
])
def test_the_guest_line_brackets_the_output_and_reports_the_status(
        argv: tuple[str, ...], status: int, output: list[str]) -> None:
    markers = spec(argv=argv).markers
    line = markers.line(argv)
    # one stream, as on the console the guest's shell writes to
    done = subprocess.run(["sh", "-c", line], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.PIPE, text=True, timeout=30, check=False)
    lines = done.stdout.splitlines()
    assert lines[0] == markers.begin
    found = markers.status.match(lines[-1])
    assert found and int(found.group(1)) == status
    assert lines[1:-1] == output
    assert [line for line in lines if markers.status.match(line)] == [lines[-1]]
    # the echo of the typed line matches none of the patterns LAVA or rvforge wait for
    assert markers.begin not in line and not markers.status.search(line)
    assert not re.search(PROMPT_PATTERN, line)
    assert Markers.of_typed(line) == markers


def test_the_marker_token_follows_what_the_job_runs() -> None:
    assert spec().markers == spec().markers
    assert spec(argv=("false",)).markers != spec().markers
    assert spec(machine="qemu-virt").markers != spec().markers


def test_the_prompt_pattern_skips_the_kernel_printing_its_command_line() -> None:
    kernel = (f"[    0.000000] Kernel command line: console=ttyS0 rdinit=/init "
              f"rvforge.shell=1 PS1={PROMPT}")
    unknown = f'Unknown kernel command line parameters "PS1={PROMPT}", will be passed'
    assert not re.search(PROMPT_PATTERN, kernel)
    assert not re.search(PROMPT_PATTERN, unknown)
    assert re.search(PROMPT_PATTERN, f"\r\n{PROMPT}")


def test_the_job_reports_the_command_as_one_case_per_machine() -> None:
    job = job_document(spec(argv=("sh", "-c", "exit 3")))
    test = job["actions"][2]["test"]["interactive"][0]
    assert test["name"] == "rvforge-qemu-virt-v"
    [command] = test["script"]
    assert command["name"] == "command"
    status = f"RVFORGE-STATUS-{spec(argv=('sh', '-c', 'exit 3')).markers.token}"
    assert re.search(command["successes"][0]["message"], f"{status} 0\r\n")
    assert not re.search(command["successes"][0]["message"], f"{status} 10")
    assert re.search(command["failures"][0]["message"], f"{status} 3")
    assert not re.search(command["failures"][0]["message"], "RVFORGE-STATUS-000000000000 3")
    assert job["context"]["extra_options"] == ["-smp 2", "-no-reboot", "-bios default"]


@pytest.mark.skipif(not LAVA_PYTHON.is_file(), reason="no system Python")
def test_the_device_dictionary_passes_lavas_device_schema(tmp_path: Path) -> None:
    check = ("import sys, yaml\n"
             "try:\n    from lava_common.schemas.device import validate\n"
             "except ImportError:\n    print('MISSING'); sys.exit(0)\n"
             "try:\n    validate(yaml.safe_load(sys.stdin))\n"
             "except Exception as error:\n    print(error)\n")
    qemu = SystemQemu(Path("/usr/bin/qemu-system-riscv64"), "7.2.0", frozenset({"rv64"}),
                      tmp_path)
    device = device_dictionary(spec(), qemu)
    done = subprocess.run([str(LAVA_PYTHON), "-c", check], input=yaml.safe_dump(device),
                          capture_output=True, text=True, check=True)
    if done.stdout.strip() == "MISSING":
        pytest.skip("lava-common is not installed")
    assert done.stdout.strip() == ""
    options = device["actions"]["boot"]["methods"]["qemu"]["parameters"]["options"]
    assert options[:2] == [f"-L {tmp_path}", "-cpu rv64,v=true,vlen=128,elen=64"]
    assert "-m 2048" in options and "-nic none" in options
