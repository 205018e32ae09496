"""The ISA rules against GNU binutils 2.44 (Debian trixie's riscv64 build, run under
qemu-riscv64; see tests/gnu_toolchain.py): the implication table is the toolchain's,
objects it assembles with ``-march=X`` are clean on ``--isa X``, ``EF_RISCV_RVC`` means
Zca, RVE is not RVI, an instruction two extensions define is met by either, every
instruction it assembles for an extension is classified into that extension, and its
big-endian objects are read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
from rvforge.riscv.elf import EF_RISCV_RVC, read_elf
from rvforge.riscv.insn import classify, providers
from rvforge.riscv.isa import IMPLICATIONS, implied, missing, parse_isa, parse_target
from rvforge.tree import HostFile, Tree

pytestmark = pytest.mark.network

SELF_AUDITED = ("c", "zca", "zcb", "zcmp", "zcmt", "zcmop", "zcd", "shcounterenw",
                "shvstvecd", "smcsrind", "sscsrind", "zfbfmin", "zvfbfwma", "zvfh", "zvkn",
                "zvksc", "zk", "zks", "v", "zve32f", "zvl256b_zve32x", "zicfiss", "b",
                "zabha", "zacas", "zfa", "zhinx", "smstateen", "svadu", "xtheadvector")
"""Extensions whose real objects are audited (one per kind of rule; every extension's
closure is compared in-process by the first test)."""

INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "zba": ("sh1add a0,a1,a2", "add.uw a0,a1,a2", "slli.uw a0,a1,3", "sh3add.uw a0,a1,a2"),
    "zbb": ("andn a0,a1,a2", "orn a0,a1,a2", "xnor a0,a1,a2", "clz a0,a1", "ctzw a0,a1",
            "cpop a0,a1", "max a0,a1,a2", "minu a0,a1,a2", "sext.b a0,a1", "sext.h a0,a1",
            "zext.h a0,a1", "rol a0,a1,a2", "rorw a0,a1,a2", "rori a0,a1,3",
            "roriw a0,a1,3", "orc.b a0,a1", "rev8 a0,a1"),
    "zbkb": ("andn a0,a1,a2", "orn a0,a1,a2", "xnor a0,a1,a2", "rol a0,a1,a2",
             "ror a0,a1,a2", "rori a0,a1,3", "rolw a0,a1,a2", "roriw a0,a1,3",
             "rev8 a0,a1", "pack a0,a1,a2", "packh a0,a1,a2", "packw a0,a1,a2",
             "brev8 a0,a1"),
    "zbc": ("clmul a0,a1,a2", "clmulh a0,a1,a2", "clmulr a0,a1,a2"),
    "zbkc": ("clmul a0,a1,a2", "clmulh a0,a1,a2"),
    "zbkx": ("xperm4 a0,a1,a2", "xperm8 a0,a1,a2"),
    "zbs": ("bset a0,a1,a2", "bclri a0,a1,3", "bext a0,a1,a2", "binvi a0,a1,63"),
    "zicond": ("czero.eqz a0,a1,a2", "czero.nez a0,a1,a2"),
    "zfhmin": ("flh fa0,0(a0)", "fsh fa0,0(a0)", "fcvt.s.h fa0,fa1", "fcvt.h.d fa0,fa1",
               "fmv.x.h a0,fa0", "fmv.h.x fa0,a0"),
    "zfh": ("fadd.h fa0,fa1,fa2", "fmadd.h fa0,fa1,fa2,fa3", "fsqrt.h fa0,fa1",
            "fcvt.w.h a0,fa0"),
    "zacas": ("amocas.w a0,a1,(a2)", "amocas.d a0,a1,(a2)", "amocas.q a0,a2,(a3)"),
    "zicbom": ("cbo.clean (a0)", "cbo.flush (a0)", "cbo.inval (a0)"),
    "zicboz": ("cbo.zero (a0)",),
    "v": ("vsetvli t0,a0,e32,m1,ta,ma", "vadd.vv v1,v2,v3", "vle32.v v1,(a0)",
          "vse8.v v1,(a0)", "vlse64.v v1,(a0),a1", "vl1re8.v v1,(a0)", "csrr a0,vlenb"),
    "zvbb": ("vandn.vv v1,v2,v3", "vbrev.v v1,v2", "vbrev8.v v1,v2", "vrev8.v v1,v2",
             "vclz.v v1,v2", "vctz.v v1,v2", "vcpop.v v1,v2", "vrol.vv v1,v2,v3",
             "vror.vi v1,v2,3", "vror.vi v1,v2,35", "vwsll.vv v2,v4,v6", "vwsll.vi v2,v4,3"),
    "zvkb": ("vandn.vx v1,v2,a0", "vbrev8.v v1,v2", "vrev8.v v1,v2", "vrol.vx v1,v2,a0",
             "vror.vv v1,v2,v3", "vror.vi v1,v2,3"),
    "zvbc": ("vclmul.vv v1,v2,v3", "vclmulh.vx v1,v2,a0"),
    "zvkned": ("vaesef.vv v1,v2", "vaesdm.vs v1,v2", "vaeskf1.vi v1,v2,1",
               "vaeskf2.vi v1,v2,1", "vaesz.vs v1,v2"),
    "zvknha": ("vsha2ms.vv v1,v2,v3", "vsha2ch.vv v1,v2,v3", "vsha2cl.vv v1,v2,v3"),
    "zvknhb": ("vsha2ms.vv v1,v2,v3", "vsha2ch.vv v1,v2,v3", "vsha2cl.vv v1,v2,v3"),
    "zvksed": ("vsm4k.vi v1,v2,1", "vsm4r.vv v1,v2"),
    "zvksh": ("vsm3me.vv v1,v2,v3", "vsm3c.vi v1,v2,1"),
    "zvkg": ("vghsh.vv v1,v2,v3", "vgmul.vv v1,v2"),
}
"""Instructions of each classified extension, as the 2.44 assembler spells them."""

SHARED = {"zbkb": "ror a0,a1,a2", "zbkc": "clmul a0,a1,a2", "zvkb": "vandn.vv v1,v2,v3",
          "zvknhb": "vsha2ms.vv v1,v2,v3"}
"""Extension → an instruction it shares with another one (zbb, zbc, zvbb, zvknha)."""




@pytest.fixture(scope="module")
def chain(registry: Registry) -> gnu.Toolchain:
    with BuildContext(registry) as downloading:
        return gnu.toolchain(downloading)


@pytest.fixture(scope="module")
def closures(
        chain: gnu.Toolchain,
        tmp_path_factory: pytest.TempPathFactory) -> dict[str, frozenset[str]]:
    return gnu.closures(chain, gnu.candidate_extensions(chain),
                        tmp_path_factory.mktemp("closures"))


def audit(registry: Registry, ctx: BuildContext, path: Path, isa: str,
          deep: bool = False) -> AuditReport:
    tree = Tree()
    tree.add_file(f"/{path.name}", HostFile.of(path), mode=0o755)
    run_ctx = ctx if not deep else __import__("dataclasses").replace(ctx, deep=True)
    return pipeline.audit(registry, tree, Machine("cpu", "", isa), run_ctx, ["isa"])


def problems(report: AuditReport) -> list[str]:
    return [f.message for f in report.findings if f.severity is not Severity.INFO]


def march(name: str, xlen: int = 64) -> str:
    return f"rv{xlen}i{name}" if len(name) == 1 else f"rv{xlen}i_{name}"


def test_the_implication_table_is_the_toolchains_closure(
        closures: dict[str, frozenset[str]]) -> None:
    assert len(closures) > 150  # every extension binutils 2.44 knows, vendor ones too
    differ = {name: (sorted(implied(name) - {name}), sorted(toolchain))
              for name, toolchain in closures.items() if implied(name) - {name} != toolchain}
    assert differ == {}
    assert set(IMPLICATIONS) - {"g"} <= set(closures)  # no rule for an unknown name


def test_every_extension_string_the_toolchain_writes_meets_its_own_target(
        closures: dict[str, frozenset[str]]) -> None:
    for name, implied_names in closures.items():
        written = parse_isa("rv64i2p1_" + "_".join(sorted(implied_names | {name})))
        xlen = 32 if name == "zcf" else 64
        target = parse_target(march(name, xlen))
        assert missing(written, target) == [] or name == "zcf", name


def test_objects_assembled_with_march_x_are_clean_on_isa_x(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    def build(name: str) -> Path:
        return chain.assemble("nop\n", tmp_path / f"{name}.o", "-misa-spec=20191213",
                              f"-march={march(name)}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        objects = dict(zip(SELF_AUDITED, pool.map(build, SELF_AUDITED), strict=True))
    for name, path in objects.items():
        assert problems(audit(registry, ctx, path, march(name))) == [], name
    # and they do need what they say: on plain rv64i the same objects are errors
    assert missing(parse_isa(read_elf(objects["zcmt"].read_bytes()).arch or ""),
                   parse_target("rv64i")) == ["zca", "zcmt"]


def test_rvc_flag_of_a_zca_object_means_zca_not_c(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    obj = chain.assemble("c.nop\nc.addi a0,1\n", tmp_path / "zca.o", "-march=rv64i_zca")
    info = read_elf(obj.read_bytes())
    assert info.e_flags & EF_RISCV_RVC and "c" not in parse_isa(info.arch or "").names
    assert problems(audit(registry, ctx, obj, "rv64i_zca")) == []
    [finding] = audit(registry, ctx, obj, "rv64i").errors
    assert finding.details["missing"] == ["zca"]


def test_an_rvi_object_using_t3_fails_on_an_rve_cpu(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    rvi = chain.assemble("add t3,t3,a0\n", tmp_path / "rvi.o", "-misa-spec=20191213",
                         "-march=rv64i", "-mabi=lp64")
    [finding] = audit(registry, ctx, rvi, "rv64emac").errors
    assert finding.code == "isa-required" and finding.details["missing"] == ["i"]
    rve = chain.assemble("add a0,a0,a1\n", tmp_path / "rve.o", "-march=rv64e_m",
                         "-mabi=lp64e")
    assert read_elf(rve.read_bytes()).abi == "lp64e"
    assert problems(audit(registry, ctx, rve, "rv64emac")) == []
    assert problems(audit(registry, ctx, rve, "rv64gc")) == []  # an RVI CPU runs RVE code


def test_shared_instructions_are_met_by_either_extension(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    lines = ["vsetvli t0,a0,e32,m1,ta,ma"]
    for ext, insn in SHARED.items():
        lines += [f".option arch, +{ext}", *[insn] * 12]
    obj = chain.assemble("\n".join(lines) + "\n", tmp_path / "shared.o", "-march=rv64gcv")
    assert "zbkb" not in (read_elf(obj.read_bytes()).arch or "")  # the attribute is rv64gcv
    by_other = "rv64gcv_zbb_zbc_zvbb_zvknha"
    by_these = "rv64gcv_zbkb_zbkc_zvkb_zvknhb"
    for isa in (by_other, by_these):
        assert problems(audit(registry, ctx, obj, isa, deep=True)) == [], isa
    [finding] = audit(registry, ctx, obj, "rv64gcv", deep=True).errors
    assert finding.code == "isa-instructions"
    assert set(finding.details["instructions"]) == {"zbb|zbkb", "zbc|zbkc", "zvbb|zvkb",
                                                    "zvknha|zvknhb"}
    assert "zbb or zbkb ×12" in finding.message


def test_every_instruction_is_classified_into_its_extension(
        chain: gnu.Toolchain, tmp_path: Path) -> None:
    lines, expected = [], []
    for ext, insns in INSTRUCTIONS.items():
        base = "rv64gv" if ext.startswith("zv") or ext == "v" else "rv64g"
        for insn in insns:
            lines += [f".option arch, {base}_{ext}" if ext != "v" else ".option arch, rv64gv",
                      insn]
            expected.append((ext, insn))
    obj = chain.assemble("\n".join(lines) + "\n", tmp_path / "insns.o", "-march=rv64gv")
    info = read_elf(obj.read_bytes())
    [text] = [c for c in info.code if c.name == ".text"]
    data = obj.read_bytes()[text.offset:text.offset + text.size]
    words = np.frombuffer(data, dtype="<u4")
    assert len(words) == len(expected)
    wrong = []
    for (ext, insn), word in zip(expected, words.tolist(), strict=True):
        counts, _, _ = classify(np.array([word], dtype=np.uint32))
        if list(counts.values()) != [1] or ext not in providers(next(iter(counts))):
            wrong.append((ext, insn, hex(word), dict(counts)))
    assert wrong == []


def test_big_endian_objects_are_read(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    obj = chain.assemble("ror a0,a1,a2\n", tmp_path / "be.o", "-mbig-endian",
                         "-march=rv64gc_zbkb")
    info = read_elf(obj.read_bytes())
    assert obj.read_bytes()[5] == 2 and info.arch is not None and "zbkb" in info.arch
    assert problems(audit(registry, ctx, obj, "rv64gc_zbkb")) == []
    [finding] = audit(registry, ctx, obj, "rv64gc").errors
    assert finding.details["missing"] == ["zbkb"]


def test_a_soft_float_library_without_needed_in_a_double_float_root(
        registry: Registry, ctx: BuildContext, chain: gnu.Toolchain, tmp_path: Path) -> None:
    obj = chain.assemble(".globl f\nf:\n  ret\n", tmp_path / "soft.o", "-march=rv64imac",
                         "-mabi=lp64")
    lib = tmp_path / "libsoft.so"
    linked = chain.run("ld", "-shared", "-soname", "libsoft.so.1", "-o", str(lib), str(obj))
    assert linked.returncode == 0, linked.stderr
    info = read_elf(lib.read_bytes())
    assert info.abi == "lp64" and info.needed == () and info.is_library
    tree = Tree()
    tree.add_file("/usr/lib/riscv64-linux-gnu/libsoft.so.1", HostFile.of(lib))
    # a glibc root whose loader is lp64d (its name says so when it cannot be read)
    tree.add_file("/lib/ld-linux-riscv64-lp64d.so.1", b"not read\n", mode=0o755)
    report = pipeline.audit(registry, tree, Machine("cpu", "", "rv64gc"), ctx, ["isa"])
    [finding] = report.errors
    assert finding.code == "abi-mismatch" and (finding.path or "").endswith("libsoft.so.1")
