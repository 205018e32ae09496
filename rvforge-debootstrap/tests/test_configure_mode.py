"""What --configure auto picks, with the real installed plugins (that it picks binfmt where
a handler is registered is tested with the handler, in test_configure_binfmt.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rvforge import BuildContext, build_registry

from rvforge_debootstrap.configure import auto_mode


@pytest.mark.parametrize("kind", ["disk", "initramfs", "tar", None])
def test_without_a_binfmt_handler_auto_configures_every_output_in_a_vm(
        kind: str | None, tmp_path: Path) -> None:
    with BuildContext(build_registry()) as ctx, capture_logs() as logs:
        ctx.artifact_kind = kind
        assert auto_mode(ctx, "riscv64", binfmt_dir=tmp_path) == "vm"
    reasons = [e["reason"] for e in logs if e["event"] == "--configure auto: not binfmt"]
    assert len(reasons) == 1
    expected = f"binfmt_misc is not mounted at {tmp_path}" if os.geteuid() == 0 else "needs root"
    assert expected in reasons[0]


def test_without_the_qemu_launcher_auto_is_first_boot_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RVFORGE_DISABLE_PLUGINS", "rvforge-qemu")
    with BuildContext(build_registry()) as ctx, capture_logs() as logs:
        ctx.artifact_kind = "initramfs"
        assert "qemu-virt" not in ctx.registry.launchers
        assert auto_mode(ctx, "riscv64", binfmt_dir=tmp_path) == "first-boot"
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and "configures itself at every boot" in warnings[0]
    assert "install rvforge-qemu" in warnings[0]
