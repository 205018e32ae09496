"""One command across machines (``rvforge run IMAGE --machine A,B,C``, the pytest plugin's
``--rvforge-machine A,B``) and shared files counting for ``--machine auto`` and the SIGILL
diagnosis. The boots use the real QEMU (7.2, and 10 where ``make setup-qemu10`` put it),
Debian's kernel and the Alpine fixture with a real rv64gcv program; each guest gets one
CPU so the two machines of a row pair boot side by side on a two-core host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixture_types import RiscvCC
from qemu_processes import guest_running, qemu_running_with
from structlog.testing import capture_logs

from rvforge import BuildContext, Tree, UsageError, prepare_launch
from rvforge.formats.cpio import write_cpio
from rvforge.machine_matrix import (
    COMMAND_FAILED,
    Cancelled,
    CpuBudget,
    MachineRun,
    matrix_exit_status,
    matrix_json,
    matrix_machines,
    matrix_table,
)
from rvforge.processes import Cancellation, is_running
from rvforge.registry import build_registry
from rvforge.shared_files import SharedDirectory, command_files, shared_needs

from rvforge_qemu.options import qemu_settings

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
RECORD_KEYS = {"machine", "status", "seconds", "stdout", "stderr", "diagnosis"}


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=timeout)


@pytest.fixture(scope="module")
def vsum(riscv_cc: RiscvCC) -> Path:
    return riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")


@pytest.fixture
def machines_ctx() -> Iterator[BuildContext]:
    with BuildContext(build_registry()) as ctx:
        yield ctx


def tiny_image(tmp_path: Path) -> Path:
    """A real initramfs with no ELF file: what it needs is nothing (``qemu-virt``)."""
    tree = Tree()
    tree.add_file("/init", b"#!/bin/sh\n", mode=0o755)
    image = tmp_path / "tiny.cpio"
    with image.open("wb") as out:
        write_cpio(tree, out, epoch=0)
    return image


# -- the pool, the machine lists, the rows --------------------------------------------


def most_at_once(budget: CpuBudget, cpus: list[int]) -> int:
    """Run a job per entry of ``cpus`` (each holding that many cores for 0.3 s) on real
    threads; how many ran at once at most."""
    lock = threading.Lock()
    running, peak = [0], [0]

    def job(n: int) -> None:
        with budget.hold(n):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.3)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=job, args=(n,)) for n in cpus]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return peak[0]


def test_the_pool_runs_as_many_guests_as_the_cores_hold_their_cpus() -> None:
    assert most_at_once(CpuBudget(2), [1, 1, 1, 1]) == 2
    assert most_at_once(CpuBudget(2), [2, 2, 2]) == 1
    assert most_at_once(CpuBudget(4), [2, 2, 2]) == 2
    assert most_at_once(CpuBudget(2), [8, 1]) == 1  # a guest larger than the host still runs
    assert CpuBudget().total == (os.cpu_count() or 1)


def test_a_row_waiting_for_cores_gives_up_when_the_matrix_is_cancelled() -> None:
    budget, cancellation = CpuBudget(1), Cancellation()
    outcome: list[str] = []

    def row() -> None:
        try:
            with budget.hold(1, cancellation):
                outcome.append("ran")
        except Cancelled:
            outcome.append("cancelled")

    with budget.hold(1):  # the running row holds the only core
        waiting = threading.Thread(target=row)
        waiting.start()
        time.sleep(0.3)
        assert outcome == []
        cancellation.cancel()
        waiting.join(timeout=30)
    assert outcome == ["cancelled"]
    with budget.hold(1):  # nothing was taken by the row that gave up
        pass


def test_a_machine_list_keeps_its_order_once_each_and_unknown_names_are_exit_2(
        machines_ctx: BuildContext) -> None:
    names, left = matrix_machines(" qemu-virt-v, qemu-virt,qemu-virt-v", machines_ctx)
    assert (names, left) == (["qemu-virt-v", "qemu-virt"], [])
    with pytest.raises(UsageError, match="'qemu-virt-x'.*qemu-virt-v"):
        matrix_machines("qemu-virt,qemu-virt-x", machines_ctx)
    with pytest.raises(UsageError, match="names no machine"):
        matrix_machines(" , ", machines_ctx)


def test_all_is_every_profile_this_qemu_boots_and_says_why_the_others_are_left_out(
        machines_ctx: BuildContext) -> None:
    names, left = matrix_machines("all", machines_ctx)
    reasons = {item.machine: item.reason for item in left}
    assert {"qemu-virt", "qemu-virt-v", "qemu-virt-v256"} <= set(names)
    assert "auto" not in names and "auto" not in reasons
    assert reasons["generic-rv64gc"] == "an audit target only: no launcher boots it"
    assert "needs QEMU's CPU model 'rva23s64'" in reasons["qemu-virt-rva23"]
    assert not set(names) & set(reasons)


def test_all_with_qemu_10_takes_its_rva23_and_max_profiles(qemu10: Path) -> None:
    for settings, values in ((qemu_settings(qemu10), None), ({}, {"qemu": qemu10})):
        with BuildContext(build_registry(), settings=settings) as ctx:
            names, left = matrix_machines("all", ctx, values)  # values: --qemu PATH
        assert {"qemu-virt", "qemu-virt-v", "qemu-virt-rva23", "qemu-virt-max"} <= set(names)
        assert "qemu-virt-rva23" not in {item.machine for item in left}


def test_a_row_per_machine_with_the_first_line_of_the_diagnosis_and_the_exit_status() -> None:
    sigill = MachineRun("qemu-virt", 132, 12.34, b"", b"Illegal instruction\n",
                        ["illegal instruction in /usr/bin/vsum: vsetvli\nsecond line"])
    works = MachineRun("qemu-virt-v", 0, 9.0, b"vl=4\n")
    hung = MachineRun("qemu-virt-v256", None, 300.0, reason="timed out\nafter 300 s")
    table = matrix_table([sigill, works], lambda text: text.replace("\n", "\\n"))
    assert table.splitlines() == [
        "machine      status    seconds  first line",
        "qemu-virt    exit 132     12.3  illegal instruction in /usr/bin/vsum: vsetvli",
        "qemu-virt-v  ok            9.0  vl=4",
        "FAIL: 2 machines, 1 not ok"]
    assert matrix_table([works]).splitlines()[-1] == "ok: 1 machine, 0 not ok"
    assert hung.state == "failed" and hung.first_line() == "timed out"
    assert matrix_exit_status([works, works]) == 0
    assert matrix_exit_status([works, sigill]) == COMMAND_FAILED == 1
    assert matrix_exit_status([sigill, hung, works]) == 4
    record = matrix_json([sigill])["machines"][0]
    assert RECORD_KEYS <= set(record)
    assert (record["status"], record["stderr"], record["seconds"]) == (
        132, "Illegal instruction\n", 12.34)


# -- shared files -----------------------------------------------------------------------


def test_the_shared_files_a_command_names_are_found_by_their_guest_path(
        tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "vsum").write_bytes(b"x")
    (tmp_path / "data").write_bytes(b"y")
    share = SharedDirectory(tmp_path, "/mnt")
    assert command_files([share], ["/mnt/bin/vsum"]) == [tmp_path / "bin" / "vsum"]
    assert command_files([share], ["sh", "-c", "/mnt/bin/vsum </mnt/data; ls /mnt"]) == [
        tmp_path / "bin" / "vsum", tmp_path / "data"]
    assert command_files([share], ["cat", "/mnt/../etc/passwd", "/mntx/data",
                                   "/mnt/missing", "bin/vsum"]) == []
    assert share.guest_path(tmp_path / "bin" / "vsum") == "/mnt/bin/vsum"


def test_shared_elf_needs_are_keyed_by_host_path_and_the_walk_is_capped(
        tmp_path: Path, vsum: Path, riscv_cc: RiscvCC,
        machines_ctx: BuildContext) -> None:
    hello = riscv_cc.program("hello", "hello", "-static", "-O2", "-march=rv64gc")
    (tmp_path / "a").write_bytes(hello.read_bytes())
    (tmp_path / "b").write_bytes(vsum.read_bytes())
    share = SharedDirectory(tmp_path, "/mnt")
    named = shared_needs([share], ["/mnt/b"], machines_ctx)
    assert list(named) == [str(tmp_path / "b")] and "v" in named[str(tmp_path / "b")].names()
    assert set(shared_needs([share], ["true"], machines_ctx)) == {
        str(tmp_path / "a"), str(tmp_path / "b")}
    with capture_logs() as logs:
        capped = shared_needs([share], ["true"], machines_ctx, cap=1)
    assert list(capped) == [str(tmp_path / "a")]
    notes = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert notes == ["--machine auto read only the first 1 files of the shares; name the "
                     "program the command runs by its guest path to have it counted"]


def test_auto_counts_a_vector_binary_the_command_runs_from_a_share(
        tmp_path: Path, vsum: Path, machines_ctx: BuildContext) -> None:
    image = tiny_image(tmp_path)
    share = tmp_path / "share"
    share.mkdir()
    (share / "vsum").write_bytes(vsum.read_bytes())
    plain = prepare_launch(image, machines_ctx, machine="auto", argv=["/mnt/vsum"])
    assert plain.machine.name == "qemu-virt"
    shared = prepare_launch(image, machines_ctx, machine="auto", argv=["/mnt/vsum"],
                            values={"share": [f"{share}:/mnt"]})
    assert shared.machine.name == "qemu-virt-v"
    assert "v" in shared.machine.isa.split("_")[0][4:]


def test_auto_names_the_shared_host_file_when_no_profile_has_what_it_needs(
        tmp_path: Path, riscv_cc: RiscvCC, machines_ctx: BuildContext) -> None:
    zfh = riscv_cc("int main(void) { return 0; }\n", "zfh", "-static", "-march=rv64gc_zfh")
    share = tmp_path / "share"
    share.mkdir()
    (share / "tool").write_bytes(zfh.read_bytes())
    with pytest.raises(UsageError, match=f"needed by {share / 'tool'}"):
        prepare_launch(tiny_image(tmp_path), machines_ctx, machine="auto",
                       argv=["/srv/tool"], values={"share": [f"{share}:/srv"]})


def test_a_flag_the_launcher_refuses_fails_the_matrix_before_any_guest_starts(
        tmp_path: Path) -> None:
    result = cli("run", str(tiny_image(tmp_path)), "--machine", "qemu-virt,qemu-virt-v",
                 "--launcher", "qemu-user", "--net", "--", "true", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "launcher 'qemu-user' does not take --net" in result.stderr
    assert result.stdout == ""
    bad = cli("run", str(tiny_image(tmp_path)), "--machine", "qemu-virt,qemu-virt-v",
              "--format", "sarif", "--", "true", timeout=120)
    assert bad.returncode == 2 and "run gives text or json" in bad.stderr


def test_machines_this_qemu_cannot_start_are_rows_that_did_not_finish_exit_4(
        tmp_path: Path) -> None:
    result = cli("run", str(tiny_image(tmp_path)), "--machine",
                 "qemu-virt-rva23,qemu-virt-max", "--qemu", "/usr/bin/qemu-system-riscv64",
                 "--format", "json", "--", "true", timeout=120)
    assert result.returncode == 4, result.stderr
    rows = records(result)
    assert [row["status"] for row in rows.values()] == [None, None]
    assert "needs QEMU's CPU model 'rva23s64'" in str(rows["qemu-virt-rva23"]["reason"])
    assert "needs QEMU's CPU model 'max'" in str(rows["qemu-virt-max"]["reason"])


# -- real boots ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path, vsum: Path
           ) -> dict[str, Path]:
    """The Alpine fixture as is, and with vsum as /usr/bin/vsum."""
    out = tmp_path_factory.mktemp("matrix-images")
    built = {}
    for name, extra in (("alpine", ()), ("vector", ("--overlay", f"{vsum}:/usr/bin/vsum"))):
        result = cli("build", "--provider", "local", "--source", str(alpine_tarball),
                     "--no-audit", *extra, "-o", str(out / f"{name}.cpio.gz"))
        assert result.returncode == 0, result.stderr
        built[name] = out / f"{name}.cpio.gz"
    return built


def records(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    rows = json.loads(result.stdout)["machines"]
    assert all(RECORD_KEYS <= set(row) for row in rows), rows
    return {str(row["machine"]): row for row in rows}


@pytest.mark.qemu
@pytest.mark.network
def test_a_matrix_run_of_the_vector_binary_diagnoses_one_row_and_runs_on_the_other(
        images: dict[str, Path], kernel: Path) -> None:
    result = cli("run", str(images["vector"]), "--machine", "qemu-virt,qemu-virt-v",
                 "--kernel", str(kernel), "--cpus", "1", "--timeout", "600", "--", "vsum")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["machine", "status", "seconds", "first", "line"], lines
    virt, vector = lines[1].split(maxsplit=4), lines[2].split(maxsplit=4)
    assert virt[:3] == ["qemu-virt", "exit", "132"], lines
    assert virt[4].startswith("illegal instruction in /usr/bin/vsum (process vsum["), lines
    assert "is vsetvli, from the vector extension V 1.0" in virt[4]
    assert (vector[:2], vector[3]) == (["qemu-virt-v", "ok"], "vl=4"), lines
    assert lines[3] == "FAIL: 2 machines, 1 not ok"


@pytest.mark.qemu
@pytest.mark.network
def test_a_json_matrix_from_a_share_names_the_host_path_in_the_diagnosis(
        images: dict[str, Path], kernel: Path, vsum: Path, tmp_path: Path) -> None:
    share = tmp_path / "bin"
    share.mkdir()
    (share / "vsum").write_bytes(vsum.read_bytes())
    (share / "vsum").chmod(0o755)
    result = cli("run", str(images["alpine"]), "--machine", "qemu-virt,qemu-virt-v",
                 "--format", "json", "--share", f"{share}:/opt/bin:ro",
                 "--kernel", str(kernel), "--cpus", "1", "--timeout", "600", "--",
                 "/opt/bin/vsum")
    assert result.returncode == 1, result.stderr
    rows = records(result)
    assert list(rows) == ["qemu-virt", "qemu-virt-v"]
    virt, vector = rows["qemu-virt"], rows["qemu-virt-v"]
    assert (virt["status"], virt["stdout"]) == (132, ""), virt
    diagnosis = virt["diagnosis"]
    assert isinstance(diagnosis, list) and len(diagnosis) == 1, virt
    assert diagnosis[0].startswith(
        f"illegal instruction in {share / 'vsum'} (shared at /opt/bin/vsum) (process vsum[")
    assert (vector["status"], vector["stdout"], vector["diagnosis"]) == (0, "vl=4\n", [])
    assert isinstance(vector["seconds"], float) and vector["seconds"] > 0


@pytest.mark.qemu
@pytest.mark.network
def test_a_matrix_over_qemu_10s_rva23_profile(images: dict[str, Path], kernel: Path,
                                             qemu10: Path) -> None:
    result = cli("run", str(images["vector"]), "--qemu", str(qemu10), "--machine",
                 "qemu-virt,qemu-virt-rva23", "--format", "json", "--kernel", str(kernel),
                 "--cpus", "1", "--timeout", "600", "--", "vsum")
    assert result.returncode == 1, result.stderr
    rows = records(result)
    assert (rows["qemu-virt-rva23"]["status"], rows["qemu-virt-rva23"]["stdout"]) == (
        0, "vl=4\n"), rows
    assert rows["qemu-virt"]["status"] == 132
    assert "is vsetvli, from the vector extension V 1.0" in str(rows["qemu-virt"]["diagnosis"])


def default_sigint() -> None:
    """In the child: SIGINT's default action (a test run started in the background
    inherits it ignored, and Python then leaves it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.qemu
@pytest.mark.network
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_running_guest_and_starts_none_of_those_waiting_for_cores(
        images: dict[str, Path], kernel: Path, tmp_path: Path, signum: int,
        code: int) -> None:
    """Each guest takes every core (--cpus N on N cores): one runs, two wait. SIGTERM
    and Ctrl-C (SIGINT) cancel the matrix: the running row's QEMU is killed, the waiting
    rows never start, and rvforge exits as a single run does."""
    log = tmp_path / "console.log"
    process = subprocess.Popen(
        [RVFORGE, "run", str(images["alpine"]), "--machine",
         "qemu-virt,qemu-virt-v,qemu-virt-v256", "--kernel", str(kernel), "--cpus",
         str(os.cpu_count() or 1), "--timeout", "600", "--console-log", str(log), "--",
         "sleep", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint)
    deadline = time.monotonic() + 600
    while not guest_running("".join(p.read_text() for p in tmp_path.glob("console.*.log")),
                            images["alpine"]):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr
        time.sleep(0.5)
    assert len(qemu_running_with(images["alpine"])) == 1
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == "rvforge: interrupted", stderr
    assert not qemu_running_with(images["alpine"])
    assert len(list(tmp_path.glob("console.qemu-virt*.log"))) == 1, stderr
    assert not log.exists()


def children_named(parent: int, name: str) -> list[int]:
    """Pids of the live processes called ``name`` whose parent is ``parent``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text() if proc.name.isdigit() else ""
        except OSError:
            continue
        comm, _, rest = stat.partition(" (")[2].rpartition(") ")
        fields = rest.split()
        if comm == name and fields and fields[0] != "Z" and int(fields[1]) == parent:
            found.append(int(proc.name))
    return found


def test_ctrl_c_kills_the_running_rows_program_and_starts_no_other(
        images: dict[str, Path], tmp_path: Path) -> None:
    """The qemu-user launcher (no kernel: seconds, not a boot): each row's program takes
    both of a two-core budget, so one runs and one waits; Ctrl-C is exit 130, the running
    qemu-riscv64 is killed by the cancel, and the waiting row never starts one."""
    process = subprocess.Popen(
        [RVFORGE, "run", str(images["alpine"]), "--machine", "qemu-virt,qemu-virt-v",
         "--launcher", "qemu-user", "--timeout", "600", "--", "sleep", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint)
    deadline = time.monotonic() + 300
    while not (running := children_named(process.pid, "qemu-riscv64")):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr
        time.sleep(0.1)
    time.sleep(1)  # the other row, were it not waiting, would have started by now
    at_once = 1 if (os.cpu_count() or 1) < 4 else 2  # each profile has 2 CPUs
    assert len(children_named(process.pid, "qemu-riscv64")) == at_once
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "rvforge: interrupted", stderr
    assert stdout == ""
    assert not any(is_running(pid) for pid in running)


PLUGIN_TESTS = """
import os

def test_vsum(rvforge_guest):
    result = rvforge_guest.run(["vsum"])
    assert result.status == 0, "\\n".join(result.diagnosis)

def test_one_guest_at_a_time(rvforge_guest, pytestconfig):
    image = pytestconfig.getoption("rvforge_image").encode()
    qemus = [p for p in os.listdir("/proc") if p.isdigit() and _is_qemu_of(p, image)]
    assert len(qemus) == 1, qemus

def test_without_a_guest():
    pass

def _is_qemu_of(pid, image):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"qemu-system" in cmdline.split(b"\\0", 1)[0] and image in cmdline
"""


def pytest_in(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_in_guest.py").write_text(PLUGIN_TESTS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), *args,
         str(tmp_path / "test_in_guest.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env=os.environ.copy())


def test_the_pytest_plugin_names_each_machine_in_the_test_ids(tmp_path: Path) -> None:
    result = pytest_in(tmp_path, "--collect-only", "--rvforge-machine",
                       "qemu-virt,qemu-virt-v", "--rvforge-image", "never-booted.cpio")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    assert ids == ["test_in_guest.py::test_vsum[qemu-virt]",
                   "test_in_guest.py::test_one_guest_at_a_time[qemu-virt]",
                   "test_in_guest.py::test_vsum[qemu-virt-v]",
                   "test_in_guest.py::test_one_guest_at_a_time[qemu-virt-v]",
                   "test_in_guest.py::test_without_a_guest"], result.stdout


@pytest.mark.qemu
@pytest.mark.network
def test_the_pytest_plugin_runs_a_test_once_per_machine(images: dict[str, Path],
                                                        kernel: Path, tmp_path: Path) -> None:
    result = pytest_in(tmp_path, "--rvforge-machine", "qemu-virt,qemu-virt-v",
                       "--rvforge-image", str(images["vector"]), "--rvforge-kernel",
                       str(kernel), "--rvforge-cpus", "1", "--rvforge-timeout", "600")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED test_in_guest.py::test_vsum[qemu-virt] " in result.stdout, result.stdout
    assert "AssertionError: illegal instruction in /usr/bin/vsum" in result.stdout, \
        result.stdout
    assert "1 failed, 4 passed" in result.stdout, result.stdout
