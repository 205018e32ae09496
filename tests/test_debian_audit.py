"""The audit on real Debian trixie riscv64 packages (fetched once, verified, cached):
glibc and busybox-static are clean on rv64gc, runtime-dispatching libraries are warnings,
and the deep sweep's counts agree exactly with objdump's."""

from __future__ import annotations

import collections
import importlib.util
from collections.abc import Callable
from pathlib import Path

import downloads
import pytest
from downloads import AUDIT_DEBS

from rvforge import pipeline
from rvforge.context import BuildContext
from rvforge.findings import Severity
from rvforge.machines import Machine
from rvforge.registry import Registry
from rvforge.riscv.elf import read_elf, read_symbols
from rvforge.riscv.insn import SweepResult, sweep
from rvforge.tree import EntryKind, Tree

pytestmark = pytest.mark.network

BASE = ("base-files", "libc6", "busybox-static")
DISPATCHING = {  # package → the library that says v in its attribute but dispatches
    "libopenblas0-pthread": "/usr/lib/riscv64-linux-gnu/openblas-pthread/libopenblasp-r0.3.29.so",
    "libsleef3": "/usr/lib/riscv64-linux-gnu/libsleef.so.3",
    "libpixman-1-0": "/usr/lib/riscv64-linux-gnu/libpixman-1.so.0",
}
RV64GC = Machine("rv64gc", "", "rv64gc")



@pytest.fixture(scope="module")
def debs(registry: Registry) -> dict[str, Path]:
    with BuildContext(registry) as downloading:
        return downloads.debian_packages(downloading, AUDIT_DEBS)


def tree_of(debs: dict[str, Path], names: tuple[str, ...], ctx: BuildContext) -> Tree:
    from rvforge_debootstrap.archive import extract_deb

    tree = Tree()
    for name in names:
        extract_deb(debs[name], tree, ctx.scratch("unpacked", name))
    return tree


def test_libc6_and_busybox_static_are_clean_on_rv64gc(
        registry: Registry, ctx: BuildContext, debs: dict[str, Path]) -> None:
    tree = tree_of(debs, BASE, ctx)
    report = pipeline.audit(registry, tree, RV64GC, ctx)
    problems = [f for f in report.findings if f.severity is not Severity.INFO]
    assert problems == []
    assert report.files["/usr/bin/busybox"]["missing"] == []
    libc = report.files["/usr/lib/riscv64-linux-gnu/libc.so.6"]
    assert libc["abi"] == "lp64d" and libc["arch_attribute"].startswith("rv64i2p1_m2p0")
    assert len(report.files) > 20


def test_runtime_dispatching_libraries_are_warnings(
        registry: Registry, ctx: BuildContext, debs: dict[str, Path]) -> None:
    tree = tree_of(debs, (*BASE, *DISPATCHING), ctx)
    report = pipeline.audit(registry, tree, RV64GC, ctx, ["isa"])
    assert report.errors == []
    warned = {tree.resolve(f.path or "") for f in report.warnings if f.code == "isa-required"}
    assert warned == {tree.resolve(path) for path in DISPATCHING.values()}
    for path in DISPATCHING.values():
        facts = report.files[tree.resolve(path)]
        assert "v" in facts["missing"]
        # its generic code paths run on the base profile
        assert facts["profile"] == "rva20u64" and "v" not in facts["requires"]
    assert report.files["/usr/bin/busybox"]["profile"] == "rva20u64"


@pytest.mark.parametrize("package", ["libpixman-1-0", "libsleef3", "libopenblas0-pthread"])
def test_deep_counts_agree_with_objdump(
        ctx: BuildContext, debs: dict[str, Path],
        objdump_counts: Callable[[Path], collections.Counter[str]], package: str) -> None:
    tree = tree_of(debs, (package,), ctx)
    path = tree.resolve(DISPATCHING[package])
    data = tree.read_bytes(path)
    host = ctx.scratch("objdump") / Path(path).name
    host.write_bytes(data)
    info, symbols = read_elf(data), read_symbols(data)
    assert info.arch and "_v1p0" in info.arch  # objdump decodes V for these
    ours = SweepResult()
    for code in info.code:
        ours.merge(sweep(data[code.offset:code.offset + code.size], code.address,
                         symbols.code_symbols, symbols.data_ranges))
    theirs = objdump_counts(host)
    assert ours.instructions["v"] > 1000
    for ext in ("v", "zba", "zbb", "zbs"):
        assert ours.count(ext) == theirs[ext], (ext, dict(ours.instructions), theirs)


def test_fast_reader_agrees_with_pyelftools_on_every_elf(
        registry: Registry, ctx: BuildContext, debs: dict[str, Path]) -> None:
    spec = importlib.util.spec_from_file_location(
        "elf_reference", Path(__file__).parents[1] / "rvforge-core/tests/elf_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tree = tree_of(debs, (*BASE, *DISPATCHING), ctx)
    checked = 0
    for entry in tree.walk():
        if entry.kind is not EntryKind.FILE or entry.size < 4:
            continue
        data = tree.read_bytes(entry.path)
        if data[:4] == b"\x7fELF":
            info, symbols = module.reference(data)
            assert read_elf(data) == info, entry.path
            assert read_symbols(data) == symbols, entry.path
            checked += 1
    assert checked > 30
