"""A fix names the option of the front end that asked: ``--kernel`` on the command line,
``--rvforge-kernel`` in the pytest plugin (``BuildContext.flag_prefix``)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rvforge import BuildContext, InputError, Tree, UsageError
from rvforge.formats.cpio import write_cpio
from rvforge.net.download import fetch_bytes

from rvforge_qemu.kernels import resolve_kernel

HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


@pytest.mark.parametrize("prefix", ["--", "--rvforge-"])
def test_an_unknown_kernel_source_names_the_askers_option(ctx: BuildContext,
                                                          prefix: str) -> None:
    asking = dataclasses.replace(ctx, flag_prefix=prefix)
    with pytest.raises(UsageError) as raised:
        resolve_kernel("nosuch", asking)
    assert str(raised.value) == (f"no kernel source 'nosuch' for {prefix}kernel nosuch: known "
                                 f"sources: debian; or pass {prefix}kernel PATH")


def test_offline_names_the_askers_option(ctx: BuildContext) -> None:
    asking = dataclasses.replace(ctx, flag_prefix="--rvforge-", offline=True)
    with pytest.raises(InputError, match="needs the network and --rvforge-offline was given"):
        fetch_bytes("http://127.0.0.1:9/index", asking)


def test_the_pytest_plugin_names_its_own_options(riscv_cc: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    """Through pytest itself: the fix says --rvforge-kernel, not rvforge's --kernel."""
    tree = Tree()
    tree.add_file("/init", riscv_cc(HELLO, "hello-init", "-static").read_bytes(), mode=0o755)
    image = tmp_path / "image.cpio"
    with open(image, "wb") as out:
        write_cpio(tree, out, epoch=0)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_guest.py").write_text("def test_it(rvforge_guest):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "rvforge_qemu.pytest_plugin", "-p",
         "no:cacheprovider", "--rvforge-image", str(image), "--rvforge-kernel", "nosuch",
         "test_guest.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("no kernel source 'nosuch' for --rvforge-kernel nosuch: known sources: debian; "
            "or pass --rvforge-kernel PATH") in result.stdout, result.stdout
