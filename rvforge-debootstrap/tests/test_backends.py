"""``--backend debootstrap`` and ``--backend mmdebstrap``: the host's real tools build the
tree and rvforge reads it back (``--configure binfmt`` through them is tested with the
binfmt fixture in test_configure_binfmt.py). Needs root, as both tools do here."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from rvforge.testing import assert_one_line_error

from rvforge_debootstrap.backends import SECOND_STAGE
from rvforge_debootstrap.firstboot import HOOK

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap needs root")]
Cli = Callable[..., subprocess.CompletedProcess[str]]


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return {m.name.removeprefix("./").rstrip("/"): m for m in archive}


def test_debootstrap_first_stage_with_the_second_stage_on_first_boot(
        rvforge_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "debian.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--backend", "debootstrap",
                         "--configure", "first-boot", "--no-audit", "-o", str(out),
                         timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = members(out)
    assert "debootstrap/debootstrap" in found  # the foreign first stage's own tools
    hook = found[HOOK.lstrip("/")]
    assert hook.mode & 0o111
    with tarfile.open(out) as archive:
        assert (archive.extractfile(hook.name) or io.BytesIO()).read().decode() == SECOND_STAGE
    passwd = found["usr/bin/passwd"]  # from the passwd package, unpacked with its owners
    assert (passwd.uid, passwd.mode & 0o4000) == (0, 0o4000)
    assert "etc/passwd" not in found  # made by base-passwd's preinst: not run yet


@pytest.mark.qemu
def test_debootstrap_second_stage_in_a_vm(rvforge_cli: Cli, tmp_path: Path) -> None:
    """The foreign first stage on the host, the second stage inside qemu-system-riscv64
    (in a mount namespace: it unmounts /proc and /sys of the running system when it
    ends), the configured tree read back."""
    out = tmp_path / "debian.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--backend", "debootstrap",
                         "--configure", "vm", "--no-audit", "-o", str(out), timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    found = members(out)
    with tarfile.open(out) as archive:
        status = (archive.extractfile("./var/lib/dpkg/status") or io.BytesIO()).read().decode()
    states = [line for line in status.splitlines() if line.startswith("Status: ")]
    assert len(states) > 70 and set(states) == {"Status: install ok installed"}
    assert (found["etc/shadow"].uid, found["etc/shadow"].gid) == (0, 42)
    assert "debootstrap" not in found and HOOK.lstrip("/") not in found


def test_mmdebstrap_extract_of_one_package(rvforge_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "busybox.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--backend", "mmdebstrap",
                         "--variant", "extract", "--package", "busybox-static",
                         "--configure", "none", "--no-audit", "-o", str(out), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = members(out)
    busybox = found["usr/bin/busybox"]
    assert busybox.isfile() and busybox.size > 500_000 and busybox.uid == 0
    assert "usr/bin/dpkg" not in found  # extract installs what it is given, nothing else


@pytest.mark.parametrize("args, message", [
    (["--backend", "debootstrap", "--variant", "extract"],
     "--backend debootstrap has no variant 'extract'"),
    (["--backend", "mmdebstrap", "--configure", "vm"],
     "--backend mmdebstrap supports --configure none, binfmt or auto, not 'vm'"),
    (["--backend", "mmdebstrap", "--configure", "first-boot"],
     "--backend mmdebstrap supports --configure none, binfmt or auto, not 'first-boot'"),
])
def test_what_a_backend_cannot_do_is_a_usage_error(rvforge_cli: Cli, tmp_path: Path,
                                                    args: list[str], message: str) -> None:
    out = tmp_path / "x.tar"
    result = rvforge_cli("--quiet", "build", "--provider", "debootstrap", *args, "-o", str(out))
    assert_one_line_error(result, 2, message)
    assert not out.exists()
