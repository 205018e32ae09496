"""Two QEMUs side by side: the host's 7.2 and QEMU 10 from bookworm-backports
(``make setup-qemu10``), chosen with ``--qemu``, ``$RVFORGE_QEMU`` or a profile's ``qemu``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rvforge import BuildContext

from rvforge_qemu import qemubin
from rvforge_qemu.qemubin import probe, system_qemu

pytestmark = pytest.mark.qemu

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
HOST_QEMU = Path("/usr/bin/qemu-system-riscv64")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def machine_rows(*args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    listed = cli("machines", "--format", "json", *args, env=env)
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: row for row in json.loads(listed.stdout)}


def test_the_hosts_qemu_7_2_has_neither_max_nor_rva23(tmp_path: Path) -> None:
    qemu = probe(HOST_QEMU, tmp_path)
    assert qemu.version.startswith("7.2.") and qemu.version_tuple[:2] == (7, 2)
    assert {"rv64", "sifive-u54"} <= qemu.cpu_models
    assert not {"max", "rva23s64", "Available"} & qemu.cpu_models
    assert qemu.data_dir is None  # 7.2 finds /usr/share/qemu relative to itself
    assert qemu.base_args() == [str(HOST_QEMU)]


def test_qemu_10_has_the_profile_cpus_and_brings_its_own_firmware(qemu10: Path,
                                                                  tmp_path: Path) -> None:
    qemu = probe(qemu10, tmp_path)
    assert qemu.version_tuple[:2] == (10, 0)
    assert {"max", "rva22s64", "rva23s64", "rv64"} <= qemu.cpu_models
    assert "Available" not in qemu.cpu_models  # the "Available CPUs:" heading
    firmware = qemu10.parents[1] / "share" / "qemu"
    assert qemu.data_dir == firmware.resolve()
    assert (firmware / "opensbi-riscv64-generic-fw_dynamic.bin").is_file()
    assert qemu.base_args() == [str(qemu10), "-L", str(firmware.resolve())]


def test_the_probe_is_cached_per_binary_and_redone_when_it_changes(tmp_path: Path) -> None:
    binary = tmp_path / "bin" / "qemu-system-riscv64"
    binary.parent.mkdir()
    shutil.copy2(HOST_QEMU, binary)
    cache = tmp_path / "cache"
    first = probe(binary, cache)
    entries = list((cache / "qemu" / "binaries").glob("*.json"))
    assert len(entries) == 1
    record = json.loads(entries[0].read_text())
    assert (record["path"], record["version"]) == (str(binary), first.version)
    record["version"] = "6.0.0"  # shows whether the next probe reads the cache
    entries[0].write_text(json.dumps(record))
    qemubin._probe.cache_clear()
    assert probe(binary, cache).version == "6.0.0"
    os.utime(binary, ns=(1, 1))  # a rebuilt binary: new mtime, so a new key
    assert probe(binary, cache).version == first.version
    assert len(list((cache / "qemu" / "binaries").glob("*.json"))) == 2


def test_the_binary_comes_from_profile_then_context_then_environment(
        qemu10: Path, monkeypatch: pytest.MonkeyPatch, ctx: BuildContext) -> None:
    monkeypatch.delenv(qemubin.ENV_VAR, raising=False)
    assert system_qemu(None, ctx).path == Path(shutil.which("qemu-system-riscv64") or "")
    monkeypatch.setenv(qemubin.ENV_VAR, str(qemu10))
    assert system_qemu(None, ctx).version_tuple[0] == 10
    ctx.settings["qemu"] = {"binary": str(HOST_QEMU)}
    assert system_qemu({}, ctx).version_tuple[0] == 7
    assert system_qemu({"qemu": str(qemu10)}, ctx).version_tuple[0] == 10


@pytest.mark.parametrize(("value", "message"), [
    ("/nonexistent/qemu", "--qemu /nonexistent/qemu: not an executable file; give the path "
                          "of a qemu-system-riscv64 binary"),
    ("/bin/true", "/bin/true: not a QEMU binary"),
    ("no-such-qemu-here", "--qemu no-such-qemu-here: no such program on PATH"),
])
def test_a_bad_qemu_is_a_usage_error_naming_it(value: str, message: str) -> None:
    result = cli("machines", "--qemu", value)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_machines_says_which_qemu_it_describes_for_each(qemu10: Path) -> None:
    host = cli("machines")
    assert host.returncode == 0, host.stderr
    assert host.stdout.startswith("machines on QEMU 7.2.")
    assert "qemu-virt-rva23    qemu-virt    2048 MB 2 cpus  (unavailable: machine " in host.stdout
    new = cli("machines", "--qemu", str(qemu10))
    assert new.returncode == 0, new.stderr
    assert new.stdout.startswith("machines on QEMU 10.0.") and str(qemu10) in new.stdout
    assert "unavailable" not in new.stdout
    rows = machine_rows("--qemu", str(qemu10))
    for name in ("qemu-virt-rva23", "qemu-virt-max"):
        extensions = rows[name]["isa"].split("_")
        assert "v" in extensions[0][4:] and {"zba", "zbb", "zbs", "zicond"} <= set(extensions)
        assert rows[name]["runs_on"].startswith("QEMU 10.0.")
    assert "v" not in rows["qemu-virt"]["isa"].split("_")[0][4:]
    assert machine_rows(env={qemubin.ENV_VAR: str(qemu10)})["qemu-virt-rva23"]["isa"] == (
        rows["qemu-virt-rva23"]["isa"])


def test_a_profile_can_name_its_own_qemu(qemu10: Path, tmp_path: Path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text(f'[machines.mine]\ncpu = "rva23s64"\nqemu = "{qemu10}"\n')
    listed = cli("machines", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("machines on QEMU 7.2.")
    assert f"    runs on QEMU 10.0.2 ({qemu10})" in listed.stdout
    assert machine_rows("--config", str(config))["mine"]["isa"].startswith("rv64imafdcbvh_")


def test_a_profile_the_qemu_lacks_is_refused_before_anything_runs(tmp_path: Path) -> None:
    image = tmp_path / "not-even-read.cpio"
    for command in ("boot", "run"):
        result = cli(command, "--machine", "qemu-virt-rva23", "--qemu", str(HOST_QEMU),
                     str(image), *(["--", "true"] if command == "run" else []))
        assert result.returncode == 2, result.stderr
        assert ("rvforge: error: machine 'qemu-virt-rva23' needs QEMU's CPU model 'rva23s64', "
                "which QEMU 7.2.") in result.stderr
        assert ("lacks: it came in QEMU 10.0; pass --qemu PATH (or set RVFORGE_QEMU) to a "
                "QEMU 10.0 or later") in result.stderr
    assert not image.exists()


def test_the_pytest_plugins_qemu_option_reaches_the_machines(tmp_path: Path) -> None:
    (tmp_path / "test_in_host.py").write_text(
        "import pytest\n"
        "def test_refused(rvforge_boot):\n"
        "    with pytest.raises(Exception, match=\"which QEMU 7.2.* lacks: it came in QEMU "
        "10.0\"):\n"
        "        rvforge_boot('never-read.cpio', 'qemu-virt-rva23')\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), "--rvforge-qemu",
         str(HOST_QEMU), str(tmp_path / "test_in_host.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, qemubin.ENV_VAR: "/nonexistent/is-not-used"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
