"""``--machine auto``: the smallest bootable profile whose CPU has every extension the
image's files need, on build (before the audit), boot and run; exit 2 when none has them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_types import RiscvCC

from rvforge import BuildContext, Tree, UsageError
from rvforge.auto_machine import machine_for_tree, pick_machine
from rvforge.registry import build_registry
from rvforge.tree import HostFile

pytestmark = pytest.mark.qemu

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
MAIN_C = "int main(void) { return 0; }\n"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def build(alpine_tarball: Path, output: Path, *args: str,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("build", "--provider", "local", "--source", str(alpine_tarball), *args,
               "-o", str(output), env=env)


@pytest.fixture(scope="module")
def vsum(riscv_cc: RiscvCC) -> Path:
    return riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")


@pytest.fixture(scope="module")
def half_float(riscv_cc: RiscvCC) -> Path:
    """Needs Zfh (half-precision floats), which no QEMU 7.2 CPU has and QEMU 10's max has."""
    return riscv_cc(MAIN_C, "zfh", "-static", "-O2", "-march=rv64gc_zfh")


def test_an_rv64gc_image_gets_qemu_virt(alpine_tarball: Path, tmp_path: Path) -> None:
    result = build(alpine_tarball, tmp_path / "a.cpio.gz", "--machine", "auto")
    assert result.returncode == 0, result.stderr
    assert "  audit for qemu-virt (rv64imafdch_" in result.stdout


def test_a_vector_image_gets_a_vector_machine_and_boots_on_it(
        alpine_tarball: Path, vsum: Path, tmp_path: Path) -> None:
    image = tmp_path / "v.cpio.gz"
    result = build(alpine_tarball, image, "--machine", "auto", "--overlay",
                   f"{vsum}:/usr/bin/vsum")
    assert result.returncode == 0, result.stderr
    assert "  audit for qemu-virt-v (rv64imafdcvh_" in result.stdout
    with BuildContext(build_registry()) as ctx:
        from rvforge_qemu.kernels import resolve_kernel

        kernel = resolve_kernel("auto", ctx).image
    # -v: run shows only warnings and errors of its own log unless asked (the pick is info)
    ran = cli("run", "-v", "--machine", "auto", "--kernel", str(kernel), str(image), "--",
              "vsum")
    assert (ran.returncode, ran.stdout) == (0, "vl=4\n"), ran.stderr
    assert "machine picked" in ran.stderr and "machine=qemu-virt-v" in ran.stderr


def test_the_smallest_machine_meeting_the_files_needs_is_picked(vsum: Path) -> None:
    from rvforge.riscv.needs import tree_needs

    tree = Tree()
    tree.add_file("/usr/bin/vsum", HostFile.of(vsum), mode=0o755)
    with BuildContext(build_registry()) as ctx:
        needs = tree_needs(tree, ctx)
        assert "v" in needs["/usr/bin/vsum"].extensions
        assert pick_machine(needs, ctx.registry, ctx).name == "qemu-virt-v"
        assert pick_machine({}, ctx.registry, ctx).name == "qemu-virt"
        assert machine_for_tree(tree, ctx.registry, ctx).name == "qemu-virt-v"


def test_build_hooks_see_the_picked_machine_never_auto(
        alpine_tarball: Path, vsum: Path, tmp_path: Path) -> None:
    """A plugin registered after the built-ins runs first (pluggy's order): its
    ``rvforge_build_tree_ready`` still sees the machine picked for the tree, because the
    pick is a pipeline step, not a hook."""
    import rvforge
    from rvforge import pipeline
    from rvforge.config import Config
    from rvforge.plugins import get_plugin_manager
    from rvforge.registry import Registry
    from rvforge.spec import BuildFlags, resolve_spec
    from rvforge.testing import registered_plugin

    seen: list[tuple[str, str | None]] = []

    class Observer:
        @rvforge.hookimpl
        def rvforge_build_start(self, spec: rvforge.BuildSpec) -> None:
            seen.append(("start", spec.machine.name if spec.machine else None))

        @rvforge.hookimpl
        def rvforge_build_tree_ready(self, spec: rvforge.BuildSpec) -> None:
            seen.append(("tree_ready", spec.machine.name if spec.machine else None))

    pm = get_plugin_manager()
    with registered_plugin(pm, Observer(), "observer"):
        registry = Registry(pm)
        flags = BuildFlags(provider="local", machine="auto", output=tmp_path / "v.cpio.gz",
                           provider_values={"source": str(alpine_tarball)},
                           overlays=[f"{vsum}:/usr/bin/vsum"])
        with BuildContext(registry, scratch_dir=tmp_path / "scratch") as ctx:
            spec = resolve_spec(registry, Config(), flags, ctx)
            assert spec.machine is None  # no placeholder machine named auto in the spec
            report = pipeline.build(registry, spec, ctx)
    assert seen == [("start", None), ("tree_ready", "qemu-virt-v")]
    assert report.spec.machine is not None and report.spec.machine.name == "qemu-virt-v"
    assert report.audit.machine.name == "qemu-virt-v" and "machine" in report.timings


def test_no_profile_with_the_extensions_is_exit_2_naming_them_and_the_qemu(
        alpine_tarball: Path, half_float: Path, tmp_path: Path) -> None:
    output = tmp_path / "h.cpio.gz"
    result = build(alpine_tarball, output, "--machine", "auto", "--overlay",
                   f"{half_float}:/usr/bin/zfh",
                   env={"RVFORGE_QEMU": "/usr/bin/qemu-system-riscv64"})
    assert result.returncode == 2, result.stderr
    assert ("rvforge: error: --machine auto: no machine profile here has zfh (needed by "
            "/usr/bin/zfh); profiles this host cannot run: qemu-virt-max (machine "
            "'qemu-virt-max' needs QEMU's CPU model 'max', which QEMU 7.2.") in result.stderr
    assert "it came in QEMU 8.2; pass --qemu PATH" in result.stderr
    assert not output.exists()


def test_with_qemu_10_the_half_float_image_gets_max(alpine_tarball: Path, half_float: Path,
                                                    qemu10: Path, tmp_path: Path) -> None:
    result = build(alpine_tarball, tmp_path / "h.cpio.gz", "--machine", "auto", "--overlay",
                   f"{half_float}:/usr/bin/zfh", env={"RVFORGE_QEMU": str(qemu10)})
    assert result.returncode == 0, result.stderr
    assert "  audit for qemu-virt-max (rv64imafdcbvh_" in result.stdout


def test_audit_picks_per_input(vsum: Path, tmp_path: Path) -> None:
    result = cli("audit", "--machine", "auto", str(vsum))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audited for qemu-virt-v (rv64imafdcvh_" in result.stdout
    listed = cli("machines")
    assert "  auto               -            2048 MB 2 cpus  (picked per image)" in listed.stdout


def test_auto_cannot_read_an_ext4_image(alpine_tarball: Path, tmp_path: Path) -> None:
    image = tmp_path / "a.ext4"
    assert build(alpine_tarball, image).returncode == 0
    result = cli("boot", "--machine", "auto", str(image))
    assert result.returncode == 2, result.stderr
    assert f"--machine auto reads the image's files, which rvforge cannot do for the ext4 " \
           f"image {image}: pass --machine NAME" in result.stderr
    with BuildContext(build_registry()) as ctx, pytest.raises(UsageError):
        from rvforge.auto_machine import machine_for_image

        machine_for_image(image, ctx.registry, ctx)
