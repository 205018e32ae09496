"""``rvforge lava``: jobs checked by LAVA's own schema and run by LAVA's own dispatcher
(Debian's lava-common and lava-dispatcher, ``lava-run``) under the real QEMU, booting an
image built from the Alpine fixture with Debian's real kernel."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from rvforge.testing import assert_one_line_error

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
LAVA_PYTHON = "/usr/bin/python3"
needs_lava = pytest.mark.skipif(shutil.which("lava-run") is None,
                                reason="Debian's lava-dispatcher is not installed")
F = TypeVar("F", bound=Callable[..., object])


def boots(test: F) -> F:
    """Marks of a test that boots under lava-run (QEMU, and Debian's kernel from the cache
    or the mirror)."""
    return pytest.mark.qemu(pytest.mark.network(needs_lava(test)))


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, "--quiet", *args], check=False, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path) -> Path:
    out = tmp_path_factory.mktemp("lava-image") / "alpine.cpio.gz"
    built = cli("build", "--provider", "local", "--source", str(alpine_tarball), "-o",
                str(out))
    assert built.returncode == 0, built.stderr
    return out


def lava_schema_errors(job: dict[str, object]) -> str:
    """What lava_common.schemas.validate (in the system's Python) says about ``job``."""
    check = ("import sys, yaml\nfrom lava_common.schemas import validate\n"
             "try:\n    validate(yaml.safe_load(sys.stdin))\n"
             "except Exception as error:\n    print(error)\n")
    done = subprocess.run([LAVA_PYTHON, "-c", check], input=yaml.safe_dump(job),
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.network
@needs_lava
def test_a_job_for_two_machines_carries_each_cpu_and_passes_lavas_schema(
        image: Path, kernel: Path) -> None:
    result = cli("lava", "job", str(image), "--machine", "qemu-virt,qemu-virt-v",
                 "--kernel", str(kernel), "--", "sh", "-c", "exit 3")
    assert result.returncode == 0, result.stderr
    jobs = list(yaml.safe_load_all(result.stdout))
    assert [j["context"]["cpu"] for j in jobs] == ["rv64", "rv64,v=true,vlen=128,elen=64"]
    for job, machine in zip(jobs, ("qemu-virt", "qemu-virt-v")):
        assert lava_schema_errors(job) == ""
        assert job["device_type"] == "qemu"
        assert job["context"]["arch"] == "riscv64" and job["context"]["machine"] == "virt"
        assert job["context"]["memory"] == 2048 and "-smp 2" in job["context"]["extra_options"]
        assert job["metadata"]["rvforge.machine"] == machine
        images = job["actions"][0]["deploy"]["images"]
        assert images["kernel"]["url"] == f"file://{kernel.resolve()}"
        assert images["kernel"]["sha256sum"] == sha256(kernel)
        assert images["ramdisk"]["url"] == f"file://{image.resolve()}"
        assert images["ramdisk"]["sha256sum"] == sha256(image)
        assert "rdinit=/init" in images["kernel"]["image_arg"]
        script = job["actions"][2]["test"]["interactive"][0]["script"][0]
        assert "sh -c 'exit 3' </dev/null" in script["command"]


@pytest.mark.network
@needs_lava
def test_artifact_url_names_where_a_lab_serves_the_files(image: Path, kernel: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "jobs"
    result = cli("lava", "job", str(image), "--machine", "qemu-virt,qemu-virt-v",
                 "--kernel", str(kernel), "--artifact-url", "http://127.0.0.1:8000/rv/",
                 "-o", f"{out}/", "--", "true")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["qemu-virt-v.yaml", "qemu-virt.yaml"]
    job = yaml.safe_load((out / "qemu-virt.yaml").read_text())
    images = job["actions"][0]["deploy"]["images"]
    assert images["ramdisk"]["url"] == "http://127.0.0.1:8000/rv/alpine.cpio.gz"
    assert images["kernel"]["url"].startswith("http://127.0.0.1:8000/rv/vmlinux-")


def test_lavas_schema_refuses_a_job_rvforge_would_reject_too() -> None:
    if not Path(LAVA_PYTHON).is_file():
        pytest.skip("no system Python")
    from rvforge import InputError

    from rvforge_qemu.lava.schema import validate_job

    try:
        validate_job("job_name: x\ndevice_type: qemu\nactions: []\nvisibility: nobody\n",
                     "broken.yaml")
    except InputError as error:
        assert "broken.yaml: LAVA's schema refuses the job" in str(error)
    else:
        pytest.fail("LAVA's schema accepted a job with an unknown visibility")


@boots
def test_lava_run_prints_the_output_and_passes_a_command_exiting_0(
        image: Path, kernel: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = cli("lava", "run", str(image), "--kernel", str(kernel), "--output-dir",
                 str(out), "--", "cat", "/etc/alpine-release")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "3.20.3\n"
    assert f"rvforge: LAVA jobs, logs and results in {out}" in result.stderr
    assert {p.name for p in (out / "qemu-virt").iterdir()} >= {
        "job.yaml", "device.yaml", "lava.log", "result.json"}
    rows = json.loads((out / "results.json").read_text())
    assert [(r["machine"], r["status"], r["result"]) for r in rows] == [
        ("qemu-virt", 0, "pass")]
    assert 0 < rows[0]["seconds"] < 300
    log = (out / "qemu-virt" / "lava.log").read_text()
    assert '"case": "command", "definition": "0_rvforge-qemu-virt"' in log


@boots
def test_lava_run_fails_with_the_commands_status_and_results_read_it_back(
        image: Path, kernel: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = cli("lava", "run", str(image), "--kernel", str(kernel), "--output-dir",
                 str(out), "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert result.returncode == 3, result.stderr
    # LAVA has one channel, the serial console: both streams come out on stdout
    assert result.stdout == "to-stdout\nto-stderr\n"
    assert "rvforge: qemu-virt: fail, status 3" in result.stderr
    log = out / "qemu-virt" / "lava.log"
    read = cli("lava", "results", str(log))
    assert read.returncode == 3, read.stderr
    [row] = json.loads(read.stdout)
    assert (row["machine"], row["status"], row["result"]) == ("qemu-virt", 3, "fail")
    assert row == json.loads((out / "results.json").read_text())[0]


@boots
def test_one_job_per_machine_runs_the_same_command_on_each_cpu(
        image: Path, kernel: Path, tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    result = cli("lava", "run", str(image), "--kernel", str(kernel), "--machine",
                 "qemu-virt,qemu-virt-v", "--output-dir", str(out), "--", "sh", "-c",
                 "grep -q '^isa.*_zve64d' /proc/cpuinfo")
    assert result.returncode == 1, result.stderr  # the first machine that did not pass
    read = cli("lava", "results", str(out), "--format", "json")
    rows = {r["machine"]: (r["status"], r["result"]) for r in json.loads(read.stdout)}
    assert rows == {"qemu-virt": (1, "fail"), "qemu-virt-v": (0, "pass")}
    assert read.returncode == 1


@boots
def test_a_boot_that_never_reaches_the_shell_exits_4(image: Path, kernel: Path,
                                                      tmp_path: Path) -> None:
    # no init to run: the kernel panics, panic=-1 reboots, -no-reboot ends QEMU
    result = cli("lava", "run", str(image), "--kernel", str(kernel), "--append",
                 "rdinit=/nonexistent", "--timeout", "120", "--output-dir",
                 str(tmp_path / "run"), "--", "true")
    assert result.returncode == 4, result.stderr
    assert "rvforge: qemu-virt: incomplete" in result.stderr
    assert result.stdout == ""


def test_lava_run_without_lava_run_exits_125_with_the_install_line(
        tmp_path: Path, alpine_tarball: Path) -> None:
    result = cli("lava", "run", str(alpine_tarball), "--", "true",
                 env={"PATH": str(tmp_path)})
    assert_one_line_error(result, 125, "lava-run is not installed (not on PATH): install "
                          "LAVA's dispatcher with `sudo apt-get install "
                          "--no-install-recommends lava-dispatcher`")


@pytest.mark.parametrize("args, message", [
    (["--machine", "qemu-virt,qemu-vrit"], "unknown machine 'qemu-vrit'"),
    (["--machine", "generic-rv64gc"], "is not a qemu-virt profile"),
    (["--append", 'x="a b"'], "a kernel command-line word with a quote, a brace or a space"),
])
def test_lava_job_refuses_what_a_job_cannot_carry(image: Path, tmp_path: Path,
                                                  args: list[str], message: str) -> None:
    kernel = tmp_path / "vmlinux-test"  # never booted: the job only names and hashes it
    kernel.write_bytes(b"not booted")
    result = cli("lava", "job", str(image), "--kernel", str(kernel), *args, "--", "true")
    assert_one_line_error(result, 2, message)


@pytest.mark.parametrize("command", ["job", "run"])
def test_lava_job_and_run_take_the_guest_flags_qemu_virt_declares_for_them(
        command: str) -> None:
    """Declared once, by the launcher that takes them: ``--help`` shows each declared flag
    with its declared help, and no other guest flag of ``rvforge run``."""
    from rvforge import declared_options

    from rvforge_qemu.options import LaunchOptions

    specs = [s for s in declared_options(LaunchOptions) if f"lava {command}" in s.commands]
    expected = {"kernel", "timeout", "memory", "cpus", "append"} | (
        {"qemu"} if command == "run" else set())
    assert {spec.name for spec in specs} == expected
    shown = " ".join(cli("lava", command, "--help", env={"COLUMNS": "200"}).stdout.split())
    for spec in specs:
        assert f"{spec.flag} " in shown and " ".join(spec.help.split()) in shown, spec.flag
    assert "--share" not in shown and "--gdb" not in shown


@pytest.mark.parametrize("args, flag", [(["--timeout", "0"], "--timeout"),
                                        (["--memory", "0"], "--memory"),
                                        (["--cpus", "-1"], "--cpus")])
def test_lava_job_checks_the_guest_flags_as_run_does(image: Path, tmp_path: Path,
                                                     args: list[str], flag: str) -> None:
    kernel = tmp_path / "vmlinux-test"
    kernel.write_bytes(b"not booted")
    result = cli("lava", "job", str(image), "--kernel", str(kernel), *args, "--", "true")
    assert_one_line_error(result, 2, flag)


@needs_lava
def test_lava_runs_qemu_is_the_one_run_would_use_and_checked_before_any_work(
        image: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = cli("lava", "run", str(image), "--qemu", str(tmp_path / "no-qemu"),
                 "--output-dir", str(out), "--", "true")
    assert_one_line_error(result, 2, f"--qemu {tmp_path / 'no-qemu'}: not an executable file")
    assert not out.exists()


def test_the_guest_flags_reach_the_job(image: Path, tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinux-test"
    kernel.write_bytes(b"not booted")
    result = cli("lava", "job", str(image), "--kernel", str(kernel), "--memory", "3072",
                 "--cpus", "3", "--timeout", "77", "--append", "loglevel=4", "--no-validate",
                 "--", "true")
    assert result.returncode == 0, result.stderr
    job = yaml.safe_load(result.stdout)
    assert job["context"]["memory"] == 3072 and "-smp 3" in job["context"]["extra_options"]
    assert "loglevel=4" in job["actions"][0]["deploy"]["images"]["kernel"]["image_arg"]
    assert job["actions"][1]["boot"]["timeout"] == {"seconds": 77}
    assert job["actions"][2]["test"]["timeout"] == {"seconds": 77}


def test_lava_job_takes_an_initramfs_only(alpine_tarball: Path, tmp_path: Path) -> None:
    result = cli("lava", "job", str(alpine_tarball), "--", "true")
    assert_one_line_error(result, 2, "a LAVA job boots an initramfs, not a tar image")


def test_lava_results_refuses_what_is_not_lavas_output(tmp_path: Path) -> None:
    junk = tmp_path / "qemu-virt.yaml"
    junk.write_text("garbage\n")
    assert_one_line_error(cli("lava", "results", str(junk)), 2,
                          f"{junk}: not a list of LAVA records")
    assert_one_line_error(cli("lava", "results", str(tmp_path / "none")), 2,
                          "no such file or directory")


@pytest.mark.qemu
@needs_lava
def test_lava_run_refuses_a_board_cpu_this_qemu_lacks_before_any_work(
        image: Path, tmp_path: Path) -> None:
    version = subprocess.run(["qemu-system-riscv64", "--version"], capture_output=True,
                             text=True, check=False).stdout
    if "version 7." not in version:
        pytest.skip("the QEMU on PATH may take the board's CPU")
    out = tmp_path / "runs"
    result = cli("lava", "run", str(image), "--machine", "qemu-virt,spacemit-k1",
                 "--output-dir", str(out), "--", "true")
    assert_one_line_error(result, 2, "machine 'spacemit-k1'")
    assert "zicond" in result.stderr and not out.exists()
