"""The deep instruction sweep: exact decoding, classification, agreement with objdump."""

from __future__ import annotations

import collections
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fixture_types import RiscvCC
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.riscv.elf import read_elf, read_symbols
from rvforge.riscv.insn import CHUNK_HALFWORDS, SweepResult, classify, sweep

VECTOR_ASM = r"""
    .text
    .globl vfunc
vfunc:
    vsetvli a0, a1, e32, m1, ta, ma
    vle32.v v1, (a2)
    vadd.vv v2, v1, v1
    vse32.v v2, (a2)
    vl1re8.v v4, (a2)
    vs1r.v v4, (a2)
    vlm.v v0, (a2)
    vlse64.v v8, (a2), a3
    vluxei32.v v9, (a2), v1
    vsetivli zero, 4, e64, m2, ta, ma
    vsetvl a0, a1, a3
    csrr a0, vlenb
    csrw vxrm, a1
    csrr t0, vstart
    flw fa0, 0(a2)
    fld fa1, 8(a2)
    vfadd.vf v3, v1, fa0
    vmv.x.s a0, v2
    .2byte 0x0001
    .4byte 0x02000057
    add a0, a0, a1
    ret
"""


def sweep_path(path: Path) -> SweepResult:
    data = path.read_bytes()
    info, symbols = read_elf(data), read_symbols(data)
    total = SweepResult()
    for code in info.code:
        total.merge(sweep(data[code.offset:code.offset + code.size], code.address,
                          symbols.code_symbols, symbols.data_ranges))
    return total


def assert_agrees(
        path: Path, extensions: tuple[str, ...],
        objdump_counts: Callable[[Path], collections.Counter[str]]) -> SweepResult:
    ours, theirs = sweep_path(path), objdump_counts(path)
    for ext in extensions:
        assert ours.count(ext) == theirs[ext], (ext, dict(ours.instructions), theirs)
    return ours


def test_vector_assembly_agrees_with_objdump(
        riscv_cc: RiscvCC, objdump_counts: Callable[[Path], collections.Counter[str]]) -> None:
    obj = riscv_cc(VECTOR_ASM, "vasm", "-c", "-march=rv64gcv", suffix=".s")
    ours = assert_agrees(obj, ("v",), objdump_counts)
    # 13 vector instructions + 3 vector CSR accesses; flw/fld are scalar; the .4byte is
    # data ($d mapping symbol), not an instruction
    assert ours.instructions["v"] == 16 and ours.has_vsetvl
    assert "zfh" not in ours.instructions


def test_compiled_programs_agree_with_objdump(
        riscv_cc: RiscvCC, objdump_counts: Callable[[Path], collections.Counter[str]]) -> None:
    source = BITS
    for march in ("rv64gc_zba_zbb", "rv64gcv_zba_zbb_zbs"):
        for static in ((), ("-static",)):
            path = riscv_cc(source, f"bits-{march}{'-static' if static else ''}", "-O2",
                            f"-march={march}", *static)
            ours = assert_agrees(path, ("v", "zba", "zbb", "zbs"), objdump_counts)
            assert ours.count("zba") > 0 and ours.count("zbb") > 0


BITS = r"""
#include <stdio.h>
long idx(long *a, long i, unsigned j) { return a[i] + a[j] + ((int *)a)[i]; }
int bits(unsigned long x) { return __builtin_popcountl(x) + __builtin_clzl(x | 1); }
unsigned long mx(unsigned long a, unsigned long b) { return (a > b ? a : b) & ~b; }
unsigned long bit(unsigned long a, int n) { return a | (1UL << n); }
int main(int argc, char **argv) {
    long a[8] = {0};
    printf("%ld %d %lu %lu\n", idx(a, argc, argc), bits(argc), mx(argc, 3), bit(argc, 5));
    return 0;
}
"""


def halfwords(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}H", *values)


VSETVLI = (0xF557, 0x0D05)  # vsetvli a0, a1, e32, m1, ta, ma (0x0d05f557)
ADD = (0x0533, 0x00B5)      # add a0, a0, a1 (0x00b50533)


def test_compressed_and_32_bit_resynchronisation() -> None:
    code = halfwords(0x4501, *VSETVLI, 0x8082, *ADD, *VSETVLI)  # li; vsetvli; ret; add; vsetvli
    result = sweep(code)
    assert result.total == 5 and result.instructions["v"] == 2


def test_48_bit_instruction_is_walked_exactly() -> None:
    # a 48-bit encoding (low bits 011111) whose body looks like the start of a vsetvli:
    # decoded as 16/32-bit only it would misalign everything after it
    code = halfwords(0x001F, 0xF557, 0xF557, *VSETVLI, 0x0001)
    result = sweep(code)
    assert result.total == 3 and result.instructions["v"] == 1 and result.undecodable == 1


def test_symbols_restart_decoding_and_data_ranges_are_skipped() -> None:
    code = halfwords(*ADD, 0x0013, *VSETVLI)  # the lone 0x0013 halfword is data
    assert sweep(code).instructions["v"] == 0  # misaligned: the vsetvli is swallowed
    assert sweep(code, 0x1000, restarts=[0x1006]).instructions["v"] == 1
    assert sweep(code, 0x1000, data_ranges=[(0x1004, 0x1006)]).instructions["v"] == 1


def test_chunk_boundaries_do_not_change_counts() -> None:
    unit = halfwords(0x4501, *VSETVLI, *ADD)  # 5 halfwords: chunks split instructions
    code = unit * (CHUNK_HALFWORDS // 5 * 3 + 7)
    result = sweep(code)
    repeats = len(code) // len(unit)
    assert result.total == 3 * repeats and result.instructions["v"] == repeats


@pytest.mark.parametrize(("word", "ext"), [
    (0x0D05F557, "v"), (0x02000057, "v"), (0x0205E107, "v"), (0xC2202573, "v"),
    (0x40B57533, "zbb|zbkb"), (0x60B51533, "zbb|zbkb"), (0x60051513, "zbb"),
    (0x0AB54533, "zbb"), (0x20B52533, "zba"), (0x080505BB, "zba"), (0x48B51533, "zbs"),
    (0x0AB51533, "zbc|zbkc"), (0x0AB52533, "zbc"),
    (0x0EB55533, "zicond"), (0x0EB57533, "zicond"), (0x00459507, "zfhmin"),
    (0x04B57553, "zfh"), (0x0045200F, "zicboz"), (0x0025200F, "zicbom"),
    (0x28B5252F, "zacas"), (0x4A8420D7, "zvbb|zvkb"), (0x4A8620D7, "zvbb"),
    (0x32B52557, "zvbc"),
])
def test_classification(word: int, ext: str) -> None:
    counts, _, _ = classify(np.array([word], dtype=np.uint32))
    assert dict(counts) == {ext: 1}


@pytest.mark.parametrize("word", [
    0x00B50533,  # add
    0x00052507,  # flw
    0x00053507,  # fld
    0x0100000F,  # pause (a fence HINT)
    0x00056013,  # prefetch.i 0(a0) (an ori HINT)
    0x02B50533,  # mul
    0x40B50533,  # sub
    0x00251513,  # slli
])
def test_base_instructions_and_hints_are_not_classified(word: int) -> None:
    counts, _, _ = classify(np.array([word], dtype=np.uint32))
    assert not counts


KERNEL_STYLE = """\
.globl _start, load_offset
.set load_offset, 0x10
_start:
    addi a0, a0, 1
    ror a0, a0, a1
    j _start
"""


def rvforge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in-process, as the ``rvforge`` script runs it."""
    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_a_symbol_2_to_the_63_away_from_the_code_is_ignored(riscv_cc: RiscvCC) -> None:
    # linked at 0xffffffff80002000, with one absolute symbol near zero: kernel-style
    path = riscv_cc(KERNEL_STYLE, "kernel-style", "-nostdlib", "-static", "-march=rv64gc_zbb",
                    "-Wl,-Ttext=0xffffffff80002000", suffix=".S")
    symbols = read_symbols(path.read_bytes())
    assert 0x10 in symbols.code_symbols and max(symbols.code_symbols) >= 0xFFFFFFFF80002000
    result = sweep_path(path)
    assert result.count("zbb") == 1 and result.total == 3
    audited = rvforge_cli("audit", "--deep", "--isa", "rv64gc_zbb", "--format", "json", str(path))
    assert audited.returncode == 0, audited.stderr


def without_section_headers(data: bytes, filesz: int) -> bytes:
    """``data`` (an ELF64) with e_shoff/e_shnum/e_shstrndx zeroed and its executable
    PT_LOAD claiming ``filesz`` bytes."""
    blob = bytearray(data)
    struct.pack_into("<Q", blob, 0x28, 0)
    struct.pack_into("<HHH", blob, 0x3A, 0, 0, 0)
    phoff, = struct.unpack_from("<Q", blob, 0x20)
    phnum, = struct.unpack_from("<H", blob, 0x38)
    for n in range(phnum):
        at = phoff + n * 56
        p_type, flags = struct.unpack_from("<II", blob, at)
        if p_type == 1 and flags & 1:
            struct.pack_into("<Q", blob, at + 32, filesz)
    return bytes(blob)


def test_a_segment_claiming_a_huge_size_is_cut_to_the_file(
        riscv_cc: RiscvCC, tmp_path: Path) -> None:
    data = riscv_cc.program("hello", "hello-static", "-O2", "-static").read_bytes()
    bad = without_section_headers(data, 1 << 62)
    info = read_elf(bad)
    [code] = info.code
    assert code.name.startswith("PT_LOAD") and code.offset + code.size == len(bad)
    total = SweepResult()
    total.merge(sweep(bad[code.offset:code.offset + code.size], code.address))
    assert total.total > 1000
    (tmp_path / "huge").write_bytes(bad)
    audited = rvforge_cli("audit", "--deep", "--isa", "rv64gc", str(tmp_path / "huge"))
    # the rest of the file decodes as code too (it is data): a report, not a crash
    assert audited.returncode in (0, 3) and audited.stderr == "", audited.stderr
    assert "1 ELF file audited" in audited.stdout  # a count in the right number
