"""A Debian minbase configured in a VM (``--configure vm``), booted as an initramfs:
``/etc/os-release`` is trixie's and ``dpkg --audit`` has nothing to say. One VM
configuration (~2 min under TCG) and one boot, for CI's time budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.network, pytest.mark.qemu, pytest.mark.slow]


def test_configured_minbase_boots_and_dpkg_audit_is_clean(
        debian_cache: Path, tmp_path: Path, rvforge_cli: Callable[..., object]) -> None:
    image = tmp_path / "debian.cpio.gz"
    env = {"RVFORGE_CACHE_DIR": str(debian_cache)}
    built = rvforge_cli("build", "--provider", "debootstrap", "--configure", "vm",
                        "-o", str(image), env=env, timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]
    result = rvforge_cli("run", str(image), "--", "sh", "-c",
                         "cat /etc/os-release; echo AUDIT; dpkg --audit; echo STATUS=$?; "
                         "echo HOOKS; ls /etc/rvforge/first-boot.d; echo STATES; "
                         "dpkg-query -W -f='${db:Status-Abbrev}\\n' | sort -u",
                         env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "VERSION_CODENAME=trixie" in out
    audit, rest = out.split("AUDIT\n", 1)[1].split("STATUS=", 1)
    assert audit == "", f"dpkg --audit reported:\n{audit}"
    assert rest.startswith("0\nHOOKS\nSTATES\n"), "the first-boot hook ran and removed itself"
    assert rest.split("STATES\n", 1)[1].split() == ["ii"], "every package is installed"
