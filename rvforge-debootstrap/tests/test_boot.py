"""The Debian image of the README's one-liner (``rvforge build --provider debootstrap -o
debian.cpio.gz``, ``--configure auto``) is configured once, at build time, and boots
straight to its command: ``/etc/os-release`` is trixie's, ``dpkg --audit`` has nothing to
say and no first-boot hook is left. One build (a VM configuration, 2-5 min under TCG here;
binfmt where a handler is registered) and one boot, for CI's time budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_types import RunRvforge

from .debian_builds import DebianBuild

pytestmark = [pytest.mark.network, pytest.mark.qemu, pytest.mark.slow]


def test_the_default_image_is_configured_at_build_time_and_dpkg_audit_is_clean(
        debian_default_image: DebianBuild, debian_cache: Path,
        rvforge_cli: RunRvforge) -> None:
    image, log = debian_default_image.image, debian_default_image.log
    assert "configured in a VM" in log or "configured in a chroot" in log, log[-3000:]
    assert "first-boot" not in log
    result = rvforge_cli("run", str(image), "--", "sh", "-c",
                         "cat /etc/os-release; echo AUDIT; dpkg --audit; echo STATUS=$?; "
                         "echo HOOKS; ls /etc/rvforge/first-boot.d; echo STATES; "
                         "dpkg-query -W -f='${db:Status-Abbrev}\\n' | sort -u",
                         env={"RVFORGE_CACHE_DIR": str(debian_cache)}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "VERSION_CODENAME=trixie" in out
    audit, rest = out.split("AUDIT\n", 1)[1].split("STATUS=", 1)
    assert audit == "", f"dpkg --audit reported:\n{audit}"
    assert rest.startswith("0\nHOOKS\nSTATES\n"), "the first-boot hook ran and removed itself"
    assert rest.split("STATES\n", 1)[1].split() == ["ii"], "every package is installed"
