"""The vector binary under both QEMUs: it runs on QEMU 10's ``rva23s64`` and ``max`` CPUs
(``make setup-qemu10``), while the host's 7.2 refuses those profiles and diagnoses the
SIGILL on ``qemu-virt`` (tests/test_boot.py). One guest per machine, shared by its checks
and powered off before the next boots."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixture_types import RiscvCC

from rvforge import Artifact, BuildContext, UsageError
from rvforge.registry import build_registry

from rvforge_qemu.options import LaunchOptions
from rvforge_qemu.session import Session
from rvforge_qemu.virt import QemuVirt

pytestmark = [pytest.mark.qemu, pytest.mark.network]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))


@pytest.fixture(scope="module")
def vector_image(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path,
                 riscv_cc: RiscvCC) -> Path:
    """The Alpine fixture with a static rv64gcv program that runs ``vsetvli`` at once."""
    vsum = riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")
    image = tmp_path_factory.mktemp("qemu10") / "vector.cpio.gz"
    built = subprocess.run([RVFORGE, "build", "--provider", "local", "--source",
                            str(alpine_tarball), "--no-audit", "--overlay",
                            f"{vsum}:/usr/bin/vsum", "-o", str(image)],
                           check=False, capture_output=True, text=True, timeout=300,
                           env=os.environ.copy())
    assert built.returncode == 0, built.stderr
    return image


@pytest.fixture(scope="module", params=["qemu-virt-rva23", "qemu-virt-max"])
def guest(request: pytest.FixtureRequest, vector_image: Path, kernel: Path, qemu10: Path
          ) -> Iterator[Session]:
    with BuildContext(build_registry(), settings={"qemu": {"binary": str(qemu10)}}) as ctx:
        machine = ctx.registry.resolve_machine(request.param, None, ctx)
        options = LaunchOptions(kernel=str(kernel), timeout=600)
        with QemuVirt().session(Artifact.of_image(vector_image), machine, options,
                                ctx) as session:
            yield session


def test_the_pytest_plugin_refuses_a_profile_its_qemu_lacks_before_booting(
        rvforge_boot: Callable[..., Session], vector_image: Path) -> None:
    with pytest.raises(UsageError, match="needs QEMU's CPU model 'rva23s64', which QEMU 7.2"):
        rvforge_boot(vector_image, "qemu-virt-rva23", qemu="/usr/bin/qemu-system-riscv64")


def test_the_vector_binary_runs_on_qemu_10s_profile_machines(guest: Session) -> None:
    result = guest.run(["vsum"])
    assert (result.status, result.stdout, result.stderr) == (0, b"vl=4\n", b""), (
        result.diagnosis)


def test_the_guest_kernel_sees_the_vector_extension(guest: Session) -> None:
    result = guest.run("grep -m1 '^isa' /proc/cpuinfo")
    assert result.status == 0, result.stderr
    isa = result.stdout.decode().split(":", 1)[1].strip()
    assert isa.startswith("rv64i") and "v" in isa.split("_")[0][4:], isa
