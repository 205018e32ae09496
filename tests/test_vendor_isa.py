"""Vendor extensions against GNU binutils 2.44 (run under qemu-riscv64, as
tests/test_isa_oracle.py does): objects it assembles for each T-Head extension and for RVV
1.0, with their attribute section and with it removed, are classified by the deep sweep
into the extension objdump names, and ``--isa``/``--machine`` audits of them pass or fail
in both directions (an XTheadVector object on an RVV 1.0 CPU, an RVV 1.0 object on an
XTheadVector CPU)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import gnu_toolchain as gnu
import numpy as np
import pytest

from rvforge import pipeline
from rvforge.context import BuildContext
from rvforge.findings import Severity
from rvforge.machines import Machine
from rvforge.pipeline import AuditReport
from rvforge.registry import Registry
from rvforge.riscv.elf import read_elf
from rvforge.riscv.insn import classify, vector_only
from rvforge.tree import HostFile, Tree

pytestmark = pytest.mark.network

THEAD: dict[str, tuple[str, ...]] = {
    "xtheadba": ("th.addsl a0,a1,a2,1", "th.addsl a0,a1,a2,3"),
    "xtheadbb": ("th.srri a0,a1,3", "th.srriw a0,a1,3", "th.ext a0,a1,7,3",
                 "th.extu a0,a1,7,3", "th.ff0 a0,a1", "th.ff1 a0,a1", "th.rev a0,a1",
                 "th.revw a0,a1", "th.tstnbz a0,a1"),
    "xtheadbs": ("th.tst a0,a1,3", "th.tst a0,a1,63"),
    "xtheadcmo": ("th.dcache.call", "th.dcache.ciall", "th.dcache.civa a0",
                  "th.icache.iall", "th.dcache.cva a0", "th.l2cache.call"),
    "xtheadcondmov": ("th.mveqz a0,a1,a2", "th.mvnez a0,a1,a2"),
    "xtheadfmemidx": ("th.flrd fa0,a1,a2,1", "th.flrw fa0,a1,a2,1", "th.fsrd fa0,a1,a2,1",
                      "th.fsurw fa0,a1,a2,1"),
    "xtheadmac": ("th.mula a0,a1,a2", "th.mulah a0,a1,a2", "th.mulaw a0,a1,a2",
                  "th.muls a0,a1,a2", "th.mulsh a0,a1,a2", "th.mulsw a0,a1,a2"),
    "xtheadmemidx": ("th.lbia a0,(a1),1,2", "th.ldib a0,(a1),1,2", "th.lrw a0,a1,a2,1",
                     "th.lurd a0,a1,a2,1", "th.sbia a0,(a1),1,2", "th.srw a0,a1,a2,1"),
    "xtheadmempair": ("th.lwd a0,a1,(a2),1,3", "th.ldd a0,a1,(a2),1,4",
                      "th.lwud a0,a1,(a2),1,3", "th.swd a0,a1,(a2),1,3",
                      "th.sdd a0,a1,(a2),1,4"),
    "xtheadsync": ("th.sync", "th.sync.i", "th.sync.is", "th.sync.s", "th.sfence.vmas a0,a1"),
}
"""Instructions of each T-Head scalar extension, as binutils 2.44 spells them."""

OTHER_VENDORS: dict[str, tuple[str, ...]] = {
    "xventanacondops": ("vt.maskc a0,a1,a2", "vt.maskcn a0,a1,a2"),
    "xsfvcp": ("sf.vc.x 0x3,0xf,0x1f,a1", "sf.vc.v.vv 0x3,v1,v2,v3",
               "sf.vc.ivv 0x3,v1,v2,0xf", "sf.vc.v.fvv 0x1,v1,v2,fa1", "sf.vc.v.x 0x3,0xf,v1,a1"),
    "xsfvqmaccdod": ("sf.vqmacc.2x8x2 v8,v4,v16", "sf.vqmaccu.2x8x2 v8,v4,v16",
                     "sf.vqmaccsu.2x8x2 v8,v4,v16", "sf.vqmaccus.2x8x2 v8,v4,v16"),
    "xsfvqmaccqoq": ("sf.vqmacc.4x8x4 v8,v4,v16", "sf.vqmaccu.4x8x4 v8,v4,v16",
                     "sf.vqmaccsu.4x8x4 v8,v4,v16", "sf.vqmaccus.4x8x4 v8,v4,v16"),
    "xsfvfnrclipxfqf": ("sf.vfnrclip.x.f.qf v1,v2,fa0", "sf.vfnrclip.xu.f.qf v1,v2,fa0"),
}
"""Instructions of Ventana's and SiFive's extensions that binutils 2.44 assembles for RV64
(SiFive's vector ones on top of V)."""

THEAD_VECTOR = ("th.vsetvli t0,a0,e32,m1", "th.vlb.v v1,(a0)", "th.vlsb.v v1,(a0),a1",
                "th.vlxh.v v1,(a0),v2", "th.vsb.v v1,(a0)", "th.vadd.vv v1,v2,v3",
                "th.vfmv.f.s fa0,v1", "th.vmpopc.m a0,v1", "th.vmsbf.m v1,v2")
"""0.7.1 code: vsetvli, its sign-extending loads, and functions 1.0 moved elsewhere."""

RVV = ("vsetvli t0,a0,e32,m1,ta,ma", "vsetivli t0,4,e32,m1,ta,ma", "vle32.v v1,(a0)",
       "vlm.v v0,(a0)", "vadd.vv v1,v2,v3", "vmv.x.s a0,v1", "vcpop.m a0,v1",
       "vzext.vf2 v2,v4", "vl1re8.v v1,(a0)", "vmv1r.v v1,v2")
"""RVV 1.0 code with instructions XTheadVector lacks (vsetivli, vlm.v, vmv.x.s...)."""

SHARED_VECTOR = ("vsetvli t0,a0,e32,m1,tu,mu", "vadd.vv v1,v2,v3", "vle8.v v1,(a0)",
                 "vse8.v v1,(a0)", "vmand.mm v1,v2,v3")
"""Words both decode (as other instructions): vector code that is only ambiguous."""

SG2042 = ("rv64imafdc_zicntr_zicsr_zifencei_zihpm_zfh_xtheadba_xtheadbb_xtheadbs_xtheadcmo_"
          "xtheadcondmov_xtheadfmemidx_xtheadmac_xtheadmemidx_xtheadmempair_xtheadsync_"
          "xtheadvector")
_OBJDUMP_LINE = re.compile(r"^\s+[0-9a-f]+:\s+([0-9a-f]{8})\s+(\S+)")


@pytest.fixture(scope="module")
def chain(registry: Registry) -> gnu.Toolchain:
    with BuildContext(registry) as downloading:
        return gnu.toolchain(downloading)


def assemble(chain: gnu.Toolchain, tmp_path: Path, name: str, lines: list[str], march: str,
             repeat: int = 8, stripped: bool = False) -> Path:
    """An object of ``lines`` (each ``repeat`` times, past the stray threshold); with
    ``stripped`` its .riscv.attributes section removed, as ``strip -R`` leaves it."""
    source = "\n".join(line for line in lines for _ in range(repeat)) + "\n"
    obj = chain.assemble(source, tmp_path / f"{name}.o", f"-march={march}")
    if stripped:
        done = chain.run("objcopy", "-R", ".riscv.attributes", str(obj))
        assert done.returncode == 0, done.stderr
        assert read_elf(obj.read_bytes()).arch is None
    return obj


def objdump(chain: gnu.Toolchain, obj: Path) -> list[tuple[int, str]]:
    """(word, mnemonic) of each instruction ``objdump -d`` prints."""
    done = chain.run("objdump", "-d", str(obj))
    assert done.returncode == 0, done.stderr
    return [(int(m.group(1), 16), m.group(2)) for line in done.stdout.splitlines()
            if (m := _OBJDUMP_LINE.match(line))]


def audit(registry: Registry, ctx: BuildContext, obj: Path, isa: str, deep: bool
          ) -> AuditReport:
    tree = Tree()
    tree.add_file(f"/{obj.name}", HostFile.of(obj), mode=0o755)
    return pipeline.audit(registry, tree, Machine("cpu", "", isa),
                          dataclasses.replace(ctx, deep=deep), ["isa"])


def problems(report: AuditReport) -> list[str]:
    return [f"{f.severity.value}[{f.code}] {f.message}" for f in report.findings
            if f.severity is not Severity.INFO]


@pytest.mark.parametrize("extension", sorted(THEAD))
def test_each_thead_instruction_is_classified_as_objdump_names_it(
        chain: gnu.Toolchain, tmp_path: Path, extension: str) -> None:
    obj = assemble(chain, tmp_path, extension, list(THEAD[extension]),
                   f"rv64gc_{extension}", repeat=1)
    decoded = objdump(chain, obj)
    assert len(decoded) == len(THEAD[extension])
    for word, mnemonic in decoded:
        assert mnemonic.startswith("th."), (hex(word), mnemonic)  # the oracle decodes it
        counts, _, _ = classify(np.array([word], dtype=np.uint32))
        assert dict(counts) == {extension: 1}, (mnemonic, hex(word), dict(counts))


@pytest.mark.parametrize("extension", sorted(OTHER_VENDORS))
def test_each_ventana_and_sifive_instruction_is_classified_as_objdump_names_it(
        chain: gnu.Toolchain, tmp_path: Path, extension: str) -> None:
    base = "rv64gcv" if extension.startswith("xsf") else "rv64gc"
    obj = assemble(chain, tmp_path, extension, list(OTHER_VENDORS[extension]),
                   f"{base}_{extension}", repeat=1)
    decoded = objdump(chain, obj)
    assert len(decoded) == len(OTHER_VENDORS[extension])
    for word, mnemonic in decoded:
        assert mnemonic.startswith(("vt.", "sf.")), (hex(word), mnemonic)
        counts, _, _ = classify(np.array([word], dtype=np.uint32))
        assert dict(counts) == {extension: 1}, (mnemonic, hex(word), dict(counts))


def test_xtheadvector_words_rvv_1_reserves_and_rvv_words_0_7_1_lacks(
        chain: gnu.Toolchain, tmp_path: Path) -> None:
    thead = assemble(chain, tmp_path, "th", list(THEAD_VECTOR), "rv64gc_xtheadvector", 1)
    rvv = assemble(chain, tmp_path, "rvv", list(RVV), "rv64gcv", 1)
    # the oracle: each word decoded under the other extension (an .insn object of it)
    for obj, other in ((thead, "rv64gcv"), (rvv, "rv64gc_xtheadvector")):
        words = [word for word, _ in objdump(chain, obj)]
        cross = assemble(chain, tmp_path, f"{obj.stem}-as-{other}",
                         [f".insn 0x{w:08x}" for w in words], other, 1)
        for (word, own), (_, there) in zip(objdump(chain, obj), objdump(chain, cross),
                                           strict=True):
            counts, _, _ = classify(np.array([word], dtype=np.uint32))
            distinct = vector_only(np.array([word], dtype=np.uint32)) == 1 \
                or "xtheadvector" in counts
            assert distinct == (there == ".insn"), (own, hex(word), there, dict(counts))


@pytest.mark.parametrize("stripped", [False, True], ids=["attributes", "stripped"])
def test_an_xtheadvector_object_fails_on_an_rvv_1_cpu_and_passes_on_sg2042(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path,
        stripped: bool) -> None:
    obj = assemble(chain, tmp_path, "th", list(THEAD_VECTOR), "rv64gc_xtheadvector",
                   stripped=stripped)
    for deep in (False, True):
        assert problems(audit(registry, ctx, obj, SG2042, deep)) == [], deep
    report = audit(registry, ctx, obj, "rv64gcv", deep=True)
    [error] = report.errors
    assert "xtheadvector" in error.message and error.code == (
        "isa-instructions" if stripped else "isa-required")
    assert "sophgo-sg2042" in error.message or "no known machine" in error.message.lower()
    if not stripped:  # the attribute alone says so, without --deep
        assert [e.code for e in audit(registry, ctx, obj, "rv64gcv", False).errors] == [
            "isa-required"]


@pytest.mark.parametrize("stripped", [False, True], ids=["attributes", "stripped"])
def test_an_rvv_1_object_fails_on_sg2042_and_passes_on_an_rvv_1_cpu(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path,
        stripped: bool) -> None:
    obj = assemble(chain, tmp_path, "rvv", list(RVV), "rv64gcv", stripped=stripped)
    for deep in (False, True):
        assert problems(audit(registry, ctx, obj, "rv64gcv", deep)) == [], deep
    [error] = audit(registry, ctx, obj, SG2042, deep=True).errors
    assert error.code == ("isa-instructions" if stripped else "isa-required")
    assert re.search(r"\bv\b", error.message) and "sophgo-sg2042" not in \
        error.details.get("machines", [])


def test_only_ambiguous_vector_code_is_a_warning_not_a_pass(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    obj = assemble(chain, tmp_path, "shared", list(SHARED_VECTOR), "rv64gcv", stripped=True)
    for cpu in ("rv64gcv", SG2042):
        report = audit(registry, ctx, obj, cpu, deep=True)
        assert report.errors == [] and [w.code for w in report.warnings] == [
            "isa-vector-ambiguous"], cpu
        assert "RVV 1.0 (v) and as XTheadVector" in report.warnings[0].message
    # a CPU with neither vector extension: an error, as before
    assert [e.code for e in audit(registry, ctx, obj, "rv64gc", True).errors] == [
        "isa-instructions"]


@pytest.mark.parametrize("extension", sorted(THEAD))
def test_thead_scalar_objects_pass_on_sg2042_and_fail_on_jh7110(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path,
        extension: str) -> None:
    jh7110 = "rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb"
    for stripped in (False, True):
        obj = assemble(chain, tmp_path, f"{extension}-{stripped}", list(THEAD[extension]),
                       f"rv64gc_{extension}", stripped=stripped)
        assert problems(audit(registry, ctx, obj, SG2042, deep=True)) == []
        [error] = audit(registry, ctx, obj, jh7110, deep=True).errors
        assert extension in error.message, error.message


def test_the_json_entry_says_which_vector_extension_the_code_is(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    cases = {"th": (THEAD_VECTOR, "rv64gc_xtheadvector", "xtheadvector"),
             "rvv": (RVV, "rv64gcv", "v"), "shared": (SHARED_VECTOR, "rv64gcv", "ambiguous")}
    for name, (lines, march, kind) in cases.items():
        obj = assemble(chain, tmp_path, name, list(lines), march, stripped=True)
        report = audit(registry, ctx, obj, "rv64gcv", deep=True)
        assert report.files[f"/{obj.name}"]["vector_code"] == kind, name


def test_audit_machine_and_isa_through_the_cli_in_both_directions(
        chain: gnu.Toolchain, tmp_path: Path) -> None:
    rvforge = str(Path(sys.executable).with_name("rvforge"))

    def code(*args: str) -> int:
        done = subprocess.run([rvforge, "--quiet", "audit", *args], capture_output=True,
                              text=True, check=False, timeout=300)
        assert done.returncode in (0, 3), done.stderr
        return done.returncode

    thead = assemble(chain, tmp_path, "th", list(THEAD_VECTOR), "rv64gc_xtheadvector",
                     stripped=True)
    rvv = assemble(chain, tmp_path, "rvv", list(RVV), "rv64gcv", stripped=True)
    for obj, good, bad in ((thead, "sophgo-sg2042", "qemu-virt-v"),
                           (rvv, "qemu-virt-v", "sophgo-sg2042")):
        assert code("--deep", "--machine", good, str(obj)) == 0, obj.name
        assert code("--deep", "--machine", bad, str(obj)) == 3, obj.name
        assert code(str(obj), "--machine", bad) == 0  # stripped: only --deep sees it
    assert code("--deep", "--isa", "rv64gc_xtheadvector", str(thead)) == 0
    assert code("--deep", "--isa", "rv64gcv", str(thead)) == 3
    matrix = subprocess.run([rvforge, "audit", "--deep", str(thead), "--machine",
                             "qemu-virt-v,sophgo-sg2042"], capture_output=True, text=True,
                            check=False, timeout=300)
    assert matrix.returncode == 3
    assert "xtheadvector" in matrix.stdout.splitlines()[1]  # qemu-virt-v's row
    assert matrix.stdout.splitlines()[2].split()[1:3] == ["ok", "0"]
