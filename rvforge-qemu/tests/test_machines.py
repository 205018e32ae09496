"""Machine profiles and the ISA the installed QEMU reports for each CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rvforge import BuildContext, Machine, ToolMissingError, UsageError

from rvforge_qemu.cpuisa import cpu_isa, isa_of_dtb, with_vlen
from rvforge_qemu.fdt import parse_fdt
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import system_qemu
from rvforge_qemu.sigill import isa_extensions
from rvforge_qemu.tools import QEMU_SYSTEM

pytestmark = pytest.mark.qemu


def dump_dtb(tmp_path: Path, cpu: str) -> bytes:
    out = tmp_path / "virt.dtb"
    subprocess.run([QEMU_SYSTEM, "-machine", f"virt,dumpdtb={out}", "-cpu", cpu,
                    "-display", "none"], check=True, capture_output=True)
    return out.read_bytes()


def test_fdt_reader_reads_qemus_device_tree(tmp_path: Path) -> None:
    root = parse_fdt(dump_dtb(tmp_path, "rv64"))
    assert root.name == ""
    assert root.string("compatible") == "riscv-virtio"
    cpus = root.child("cpus")
    assert cpus is not None
    assert [c.name for c in cpus.children if c.name.startswith("cpu@")] == ["cpu@0"]
    assert root.child("chosen") is not None


def test_isa_of_rv64_is_what_qemu_7_2_says(tmp_path: Path) -> None:
    isa = isa_of_dtb(dump_dtb(tmp_path, "rv64"))
    assert isa.startswith("rv64imafdc")
    assert "v" not in isa_extensions(isa)
    assert {"zba", "zbb", "zbs"} <= set(isa.split("_"))


def test_profiles_resolve_to_their_cpus_isa(ctx: BuildContext) -> None:
    machines = ctx.registry.machines
    launcher = ctx.registry.launchers.get("qemu-virt")()
    plain = launcher.machine_isa(machines.get("qemu-virt"), ctx)
    vector = launcher.machine_isa(machines.get("qemu-virt-v"), ctx)
    wide = launcher.machine_isa(machines.get("qemu-virt-v256"), ctx)
    assert "v" not in isa_extensions(plain)
    assert "v" in isa_extensions(vector)
    assert wide.endswith("_zvl256b") and "zvl256b" not in vector
    for name in ("qemu-virt", "qemu-virt-v", "qemu-virt-v256"):
        assert machines.get(name).memory_mb >= 2048


def test_profiles_a_qemu_lacks_are_listed_but_refused_naming_the_release(
        ctx: BuildContext) -> None:
    qemu = system_qemu(None, ctx)
    launcher = ctx.registry.launchers.get("qemu-virt")()
    for name, model, since in (("qemu-virt-max", "max", "8.2"),
                               ("qemu-virt-rva23", "rva23s64", "10.0")):
        machine = ctx.registry.machines.get(name)
        if model in qemu.cpu_models:
            assert launcher.machine_isa(machine, ctx).startswith("rv64")
            continue
        with pytest.raises(UsageError) as error:
            launcher.machine_isa(machine, ctx)
        assert (f"machine {name!r} needs QEMU's CPU model {model!r}, which QEMU "
                f"{qemu.version} ({qemu.path}) lacks: it came in QEMU {since}; pass --qemu "
                ) in str(error.value)


def test_isa_is_cached_by_qemu_version_and_cpu(ctx: BuildContext) -> None:
    first = cpu_isa("rv64,v=true,vlen=128,elen=64", ctx)
    entries = list((ctx.cache_dir / "qemu" / "isa").glob("*.json"))
    assert len(entries) == 1
    record = json.loads(entries[0].read_text())
    assert record["cpu"] == "rv64,v=true,vlen=128,elen=64" and record["isa"] == first
    record["isa"] = "rv64gc_from_cache"
    entries[0].write_text(json.dumps(record))
    assert cpu_isa("rv64,v=true,vlen=128,elen=64", ctx) == "rv64gc_from_cache"


@pytest.mark.parametrize(("cpu", "reason"), [
    ("rv64,v=true,vlen=2048", "VLEN in the range [128, 1024]"),
    ("rv64,v=true,d=false", "V extension requires D extension"),
    ("no-such-cpu", "unable to find CPU model 'no-such-cpu'"),
])
def test_a_cpu_qemu_rejects_is_an_error_quoting_qemu(ctx: BuildContext, cpu: str,
                                                      reason: str) -> None:
    with pytest.raises(UsageError) as error:
        cpu_isa(cpu, ctx, machine="mine")
    assert "machine 'mine'" in str(error.value)
    assert reason in str(error.value)


def test_missing_qemu_names_the_package(ctx: BuildContext, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="apt-get install --no-install-recommends "
                                               "qemu-system-misc"):
        cpu_isa("rv64", ctx)


def test_with_vlen_adds_zvl_only_when_wider_than_v_implies() -> None:
    assert with_vlen("rv64imafdcvh_zicsr", "rv64,v=true,vlen=512") == "rv64imafdcvh_zicsr_zvl512b"
    assert with_vlen("rv64imafdcvh_zicsr", "rv64,v=true,vlen=128") == "rv64imafdcvh_zicsr"
    assert with_vlen("rv64imafdch", "rv64") == "rv64imafdch"


def test_user_profile_settings() -> None:
    machine = Machine("big", "qemu-virt", "", options={
        "cpu": "rv64,v=true,vlen=256", "extra_args": "-rtc base=utc", "smp": 4})
    settings = settings_of(machine)
    assert settings.cpu == "rv64,v=true,vlen=256" and settings.model == "rv64"
    assert settings.extra_args == ("-rtc", "base=utc")
    assert settings.bios == "default"
    with pytest.raises(UsageError, match="unknown setting 'cpux'"):
        settings_of(Machine("typo", "qemu-virt", "", options={"cpux": "rv64"}))


def test_user_profiles_from_rvforge_toml(tmp_path: Path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text(
        '[machines.wide]\ncpu = "rv64,v=true,vlen=512,elen=64"\nmemory = 4096\ncpus = 4\n\n'
        '[machines.too-wide]\ncpu = "rv64,v=true,vlen=2048"\n')
    rvforge = str(Path(sys.executable).with_name("rvforge"))
    listed = subprocess.run([rvforge, "machines", "--format", "json", "--config", str(config)],
                            capture_output=True, text=True, check=True)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["wide"]["isa"].startswith("rv64imafdcvh") and rows["wide"]["isa"].endswith(
        "_zvl512b")
    assert (rows["wide"]["memory_mb"], rows["wide"]["cpus"]) == (4096, 4)
    assert rows["too-wide"]["isa"] is None
    assert "VLEN in the range [128, 1024]" in rows["too-wide"]["error"]
    boot = subprocess.run([rvforge, "boot", str(config), "--machine", "too-wide", "--config",
                           str(config)], capture_output=True, text=True, check=False)
    assert boot.returncode == 2
    assert ("machine 'too-wide' (-cpu rv64,v=true,vlen=2048): QEMU refused to start: Vector "
            "extension implementation only supports VLEN in the range [128, 1024]"
            ) in boot.stderr


def test_a_firmware_qemu_cannot_load_is_an_error_quoting_qemu(tmp_path: Path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text('[machines.nofw]\nbios = "/nonexistent/fw.bin"\n')
    image = tmp_path / "image.cpio"
    image.write_bytes(b"070701" + b"0" * 504)  # QEMU refuses before reading it
    rvforge = str(Path(sys.executable).with_name("rvforge"))
    # --no-check: the image's /init check would refuse this stand-in before QEMU starts
    result = subprocess.run([rvforge, "boot", str(image), "--machine", "nofw", "--kernel",
                             str(image), "--config", str(config), "--no-check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stderr
    assert ("machine 'nofw': QEMU refused to start: Unable to load the RISC-V firmware "
            '"/nonexistent/fw.bin"') in result.stderr
