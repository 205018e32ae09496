"""What a RunResult says about a command that died: a real vector program run with
qemu-riscv64 on a CPU without V is killed by SIGILL, and the result says so rather than
``ok=True``."""

from __future__ import annotations

import gzip
from pathlib import Path

from fixture_types import RiscvCC

from rvforge import Artifact, BuildContext, Tree
from rvforge.formats.cpio import write_cpio


def test_a_command_killed_by_sigill_did_not_succeed(ctx: BuildContext,
                                                    riscv_cc: RiscvCC,
                                                    tmp_path: Path) -> None:
    vsum = riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")
    tree = Tree()
    tree.add_file("/usr/bin/vsum", vsum.read_bytes(), mode=0o755)
    image = tmp_path / "vector.cpio.gz"
    with gzip.open(image, "wb", compresslevel=1) as out:
        write_cpio(tree, out, epoch=0)  # type: ignore[arg-type]
    launcher = ctx.registry.launchers.get("qemu-user")
    plain = ctx.registry.resolve_machine("qemu-virt", None, ctx)
    result = launcher().run(Artifact.of_image(image), plain, ["/usr/bin/vsum"],
                            launcher.Options(), ctx)
    assert (result.status, result.signal, result.finished, result.succeeded) == (
        132, 4, True, False)
    assert repr(result).startswith("RunResult(status=132 (SIGILL), succeeded=False, "
                                   "finished=True, ")
    assert "ok=" not in repr(result)

    vector = ctx.registry.resolve_machine("qemu-virt-v", None, ctx)
    works = launcher().run(Artifact.of_image(image), vector, ["/usr/bin/vsum"],
                           launcher.Options(), ctx)
    assert (works.status, works.succeeded, works.signal, works.stdout) == (
        0, True, None, b"vl=4\n")
