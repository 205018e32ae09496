"""The pytest plugin, the CLI and API callers start guests through one path
(:func:`rvforge.prepare_launch`): options derived from the ``qemu-virt`` declaration, the
same checks and errors; ``session()`` is a declared part of the launcher contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rvforge import (
    Artifact,
    BuildContext,
    Tree,
    UsageError,
    declared_options,
    prepare_launch,
)
from rvforge.formats.cpio import write_cpio

from rvforge_qemu.options import LaunchOptions, UserOptions
from rvforge_qemu.pytest_plugin import guest_options
from rvforge_qemu.user import QemuUser
from rvforge_qemu.virt import QemuVirt


def pytest_in(tmp_path: Path, test_source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_in_host.py").write_text(test_source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), *args,
         str(tmp_path / "test_in_host.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=os.environ.copy())


def cpio_image(tmp_path: Path) -> Path:
    """A real (tiny) initramfs: what the launch path checks never boots."""
    tree = Tree()
    tree.add_file("/init", b"#!/bin/sh\n", mode=0o755)
    image = tmp_path / "app.cpio"
    with image.open("wb") as out:
        write_cpio(tree, out, epoch=0)
    return image


def test_the_pytest_options_are_derived_from_the_qemu_virt_declaration(
        tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "rvforge_qemu.pytest_plugin", "--help"],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    names = {spec.name for spec in guest_options()}
    assert {"kernel", "timeout", "qemu", "share", "net", "forward", "memory", "cpus",
            "append", "qemu_arg", "console_log"} <= names
    assert not names & {"interactive", "stream"}  # boot-only, and set by rvforge
    for spec in guest_options():
        assert f"--rvforge-{spec.flag[2:]}" in text, spec.flag
        assert f"rvforge_{spec.name} " in text, spec.name  # the ini setting
    assert {s.name for s in declared_options(LaunchOptions)} - names == {"interactive",
                                                                           "stream"}


def test_the_pytest_plugin_checks_options_as_the_cli_does(tmp_path: Path) -> None:
    result = pytest_in(tmp_path, (
        "import pytest\n"
        "from rvforge import UsageError\n"
        "def test_an_undeclared_option(rvforge_boot):\n"
        "    with pytest.raises(UsageError, match=\"launcher 'qemu-virt' does not take "
        "--bogus\"):\n"
        "        rvforge_boot('never-read.cpio', bogus=1)\n"
        "def test_the_launch_limits(rvforge_boot):\n"
        "    with pytest.raises(UsageError, match='--timeout wants a number of seconds "
        "above 0'):\n"
        "        rvforge_boot('never-read.cpio')\n"
        "def test_a_memory_below_one(rvforge_boot):\n"
        "    with pytest.raises(UsageError, match='--memory wants at least 1'):\n"
        "        rvforge_boot('never-read.cpio', memory=0, timeout=5)\n"),
        "--rvforge-timeout", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_session_is_declared_not_probed(ctx: BuildContext, tmp_path: Path) -> None:
    assert QemuVirt.supports_session and not QemuUser.supports_session
    image = cpio_image(tmp_path)
    machine = ctx.registry.machines.get("qemu-virt")
    with pytest.raises(UsageError, match="launcher 'qemu-user' cannot keep a guest running"):
        QemuUser().session(Artifact.of_image(image), machine, UserOptions(), ctx)


def test_prepare_launch_builds_the_chosen_launchers_options(ctx: BuildContext,
                                                            tmp_path: Path) -> None:
    image = cpio_image(tmp_path)
    launch = prepare_launch(image, ctx, launcher="qemu-user", values={"timeout": "7"},
                            command="run")
    assert isinstance(launch.launcher, QemuUser)
    assert launch.options == UserOptions(timeout=7.0, stream=True)
    assert launch.machine.name == "qemu-virt" and launch.machine.isa
    with pytest.raises(UsageError, match="launcher 'qemu-user' does not take --memory "
                                         r"\(it takes: --timeout\)"):
        prepare_launch(image, ctx, launcher="qemu-user", values={"memory": 512})
    virt = prepare_launch(image, ctx, values={"gdb_port": 4321, "share": None},
                          command="session")
    assert isinstance(virt.options, LaunchOptions) and not virt.options.stream
    assert virt.options.gdb_listen == 4321 and virt.options.share == []


def test_qemu_reaches_the_context_before_the_machine_resolves(ctx: BuildContext,
                                                              tmp_path: Path) -> None:
    image = cpio_image(tmp_path)
    with pytest.raises(UsageError, match="--qemu /nonexistent/qemu: not an executable"):
        prepare_launch(image, ctx, values={"qemu": "/nonexistent/qemu"})
    assert ctx.settings["qemu"] == {"binary": "/nonexistent/qemu"}
