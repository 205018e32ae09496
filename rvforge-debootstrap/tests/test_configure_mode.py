"""What --configure auto picks, with the real installed plugins."""

from __future__ import annotations

import pytest

from rvforge import BuildContext, build_registry

from rvforge_debootstrap.configure import auto_mode


@pytest.mark.parametrize("kind, mode", [("disk", "vm"), ("initramfs", "first-boot"),
                                        ("tar", "first-boot"), (None, "first-boot")])
def test_auto_configures_disk_images_in_a_vm(kind: str | None, mode: str) -> None:
    with BuildContext(build_registry()) as ctx:
        ctx.artifact_kind = kind
        assert auto_mode(ctx) == mode


def test_without_the_qemu_launcher_auto_is_first_boot(monkeypatch) -> None:
    monkeypatch.setenv("RVFORGE_DISABLE_PLUGINS", "rvforge-qemu")
    with BuildContext(build_registry()) as ctx:
        ctx.artifact_kind = "disk"
        assert "qemu-virt" not in ctx.registry.launchers
        assert auto_mode(ctx) == "first-boot"
