"""The instruction classifier against words the real cross assembler produces."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from rvforge_qemu.insn import decode

AS = "riscv64-linux-gnu-as"
OBJCOPY = "riscv64-linux-gnu-objcopy"

CASES = [
    ("vsetvli a1, zero, e32, m1, ta, ma", "vsetvli", "v"),
    ("vsetivli a1, 4, e8, m1, ta, ma", "vsetivli", "v"),
    ("vsetvl a1, a2, a3", "vsetvl", "v"),
    ("vle32.v v1, (a0)", "a vector load (vle32.v family)", "v"),
    ("vse64.v v2, (a0)", "a vector store (vse64.v family)", "v"),
    ("vadd.vv v1, v2, v3", "vector arithmetic", "v"),
    ("csrr a0, vlenb", "csrrs vlenb", "v"),
    ("csrr a0, vl", "csrrs vl", "v"),
    ("sh1add a0, a1, a2", "an instruction", "zba"),
    ("add.uw a0, a1, a2", "an instruction", "zba"),
    ("andn a0, a1, a2", "an instruction", "zbb|zbkb"),  # Zbkb has it too
    ("cpop a0, a1", "an instruction", "zbb"),
    ("rev8 a0, a1", "an instruction", "zbb|zbkb"),
    ("clmul a0, a1, a2", "an instruction", "zbc|zbkc"),  # Zbkc has it too
    ("bset a0, a1, a2", "an instruction", "zbs"),
    (".insn r 0x33, 5, 7, a0, a1, a2", "an instruction", "zicond"),  # binutils 2.40 lacks Zicond
    ("fld fa0, 0(a0)", "an instruction", "d"),
    ("flw fa0, 0(a0)", "an instruction", "f"),
    ("fadd.d fa0, fa1, fa2", "an instruction", "d"),
    ("mul a0, a1, a2", "an instruction", "m"),
    ("amoadd.w a0, a1, (a2)", "an instruction", "a"),
    ("csrr a0, cycle", "csrrs cycle", "zicntr"),
    ("csrr a0, fcsr", "csrrs fcsr", "f"),
    ("add a0, a1, a2", "an instruction", None),
]


def assemble(lines: list[str], tmp_path: Path) -> list[int]:
    if shutil.which(AS) is None:
        pytest.fail(f"{AS} is missing: apt-get install binutils-riscv64-linux-gnu")
    src = tmp_path / "t.s"
    src.write_text(".option norvc\n" + "\n".join(lines) + "\n")
    obj, raw = tmp_path / "t.o", tmp_path / "t.bin"
    march = "-march=rv64gcv_zba_zbb_zbc_zbs"
    subprocess.run([AS, march, "-o", str(obj), str(src)], check=True)
    subprocess.run([OBJCOPY, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    data = raw.read_bytes()
    return [w for (w,) in struct.iter_unpack("<I", data)]


def test_classifies_what_the_assembler_writes(tmp_path: Path) -> None:
    words = assemble([source for source, _, _ in CASES], tmp_path)
    assert len(words) == len(CASES)
    for word, (source, mnemonic, extension) in zip(words, CASES):
        decoded = decode(word)
        assert mnemonic in decoded.mnemonic, (source, decoded)
        assert decoded.extension == extension, (source, decoded)


def test_examples_from_the_issue() -> None:
    assert decode(0x0D07F557).mnemonic == "vsetvli"
    assert decode(0xC22024F3).mnemonic == "csrrs vlenb"
    assert decode(0x4501).extension == "c"
    assert decode(0x00000013).extension is None  # addi (nop): base ISA


def test_an_instruction_two_extensions_provide_names_both() -> None:
    rev8 = decode(0x6B85D513)  # rev8 a0, a1
    assert rev8.alternatives == ("zbb", "zbkb")
    assert rev8.extension_text == ("Zbb (basic bit manipulation) or "
                                   "Zbkb (bit manipulation for cryptography)")


VENDOR_WORDS = [
    # binutils 2.44 (tests/test_vendor_isa.py checks the classifier against its objdump)
    (0x02c5950b, "th.addsl a0,a1,a2,1", "xtheadba", "T-Head custom instruction"),
    (0x8405950b, "th.ff0 a0,a1", "xtheadbb", "T-Head custom instruction"),
    (0x40c5950b, "th.mveqz a0,a1,a2", "xtheadcondmov", "T-Head custom instruction"),
    (0x12050087, "th.vlb.v v1,(a0)", "xtheadvector", "XTheadVector (RVV 0.7.1)"),
]


def test_vendor_instructions_are_named_by_their_extension() -> None:
    for word, source, extension, mnemonic in VENDOR_WORDS:
        decoded = decode(word)
        assert decoded.extension == extension, (source, decoded)
        assert mnemonic in decoded.mnemonic, (source, decoded)
    assert decode(0x12050087).extension_text.startswith("XTheadVector (T-Head's vector")
