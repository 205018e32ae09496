"""``rvforge audit`` on real packages: riscv64 wheels from PyPI (cibuildwheel builds them),
real trixie ``.deb`` files from the Debian mirror, and a wheel carrying RVE code that the
newer GNU toolchain (binutils 2.44, tests/gnu_toolchain.py) assembles. Everything
downloaded is cached under the rvforge cache directory and fetched once."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import downloads
import gnu_toolchain
import pytest
from downloads import DEBS, WHEELS
from fixture_types import RiscvCC, RunRvforge
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.context import BuildContext
from rvforge.registry import Registry

pytestmark = pytest.mark.network



@pytest.fixture(scope="module")
def real_wheels(registry: Registry) -> list[Path]:
    """The wheels of :data:`~downloads.WHEELS`, from the tests' cache (downloaded once)."""
    with BuildContext(registry) as downloading:
        return downloads.real_wheels(downloading)


@pytest.fixture
def rvforge_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI in-process, as the ``rvforge`` script runs it (a second per call saved)."""
    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(app, list(args))
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout,
                                           result.stderr)

    return invoke


def audit(rvforge_cli: RunRvforge, *args: str) -> tuple[int, dict]:
    result = rvforge_cli("--quiet", "audit", "--format", "json", *args)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def test_real_riscv64_wheels_meet_their_baseline(
        rvforge_cli: RunRvforge, real_wheels: list[Path]) -> None:
    code, data = audit(rvforge_cli, *map(str, real_wheels))
    assert code == 0, data["findings"]
    assert [i["kind"] for i in data["inputs"]] == ["wheel"] * len(WHEELS)
    for item in data["inputs"]:
        assert item["target"]["machine"] == "manylinux_2_31_riscv64"
        assert item["profile"] == "rva20u64" and "qemu-virt" in item["machines"]
        assert "generic-rv64gc" not in item["machines"]  # an audit target, not bootable
    assert all(f["path"].endswith(".so") and f["abi"] == "lp64d" for f in data["files"])
    assert len(data["files"]) >= len(WHEELS)
    text = rvforge_cli("--quiet", "audit", "--deep", *map(str, real_wheels))
    assert text.returncode == 0, text.stdout
    assert text.stdout.count("lowest profile that runs all of it: rva20u64") == len(WHEELS)
    assert text.stdout.rstrip().endswith(f"ok: {len(WHEELS)} inputs, "
                                         f"{len(data['files'])} ELF files: 0 errors, "
                                         "0 warnings")


def test_a_real_wheel_on_an_rve_cpu_fails_naming_its_member(
        rvforge_cli: RunRvforge, real_wheels: list[Path]) -> None:
    code, data = audit(rvforge_cli, "--isa", "rv64emac", str(real_wheels[0]))
    assert code == 3
    [finding] = data["findings"]
    assert finding["path"].startswith("/markupsafe/_speedups") and "i" in \
        finding["details"]["missing"]


def test_real_debs_from_the_mirror(rvforge_cli: RunRvforge, ctx: BuildContext) -> None:
    debs = downloads.debian_packages(ctx, DEBS)
    code, data = audit(rvforge_cli, "--isa", "rva20u64", *(str(debs[n]) for n in DEBS))
    assert code == 0, data["findings"]
    paths = {f["path"] for f in data["files"]}
    assert "/usr/bin/busybox" in paths
    assert any(p.startswith("/usr/lib/riscv64-linux-gnu/libzstd.so.1") for p in paths)
    assert [i["profile"] for i in data["inputs"]] == ["rva20u64", "rva20u64"]
    assert data["inputs"][0]["kind"] == "deb"


def _toolchain(ctx: BuildContext) -> gnu_toolchain.Toolchain:
    return gnu_toolchain.toolchain(ctx)


def test_a_wheel_with_rve_code_runs_on_an_rve_cpu(
        rvforge_cli: RunRvforge, ctx: BuildContext, riscv_cc: RiscvCC, tmp_path: Path) -> None:
    chain = _toolchain(ctx)
    obj = chain.assemble(".globl f\nf:\n  add a0, a0, a1\n  ret\n", tmp_path / "rve.o",
                         "-march=rv64e_m_c", "-mabi=lp64e")
    lib = tmp_path / "librve.so"
    linked = chain.run("ld", "-shared", "-o", str(lib), str(obj))
    assert linked.returncode == 0, linked.stderr
    plain = riscv_cc("int g(int a){return a+1;}\n", "libplain-rve.so", "-O2", "-shared",
                     "-fPIC")
    wheel = _builders().make_wheel(tmp_path, {"demo/_rve.so": lib.read_bytes(),
                                  "demo/_plain.so": plain.read_bytes()})
    code, data = audit(rvforge_cli, "--isa", "rv64emac", str(wheel))
    assert code == 3
    [finding] = data["findings"]
    assert finding["path"] == "/demo/_plain.so" and "i" in finding["details"]["missing"]
    rve = next(f for f in data["files"] if f["path"] == "/demo/_rve.so")
    assert rve["abi"] == "lp64e" and rve["missing"] == [] and "e" in rve["requires"]
    code, data = audit(rvforge_cli, str(wheel))  # an RVI CPU runs RVE code
    assert code == 0 and data["inputs"][0]["profile"] == "rva20u64"


def _builders():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "package_builders",
        Path(__file__).parents[1] / "rvforge-core" / "tests" / "package_builders.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
