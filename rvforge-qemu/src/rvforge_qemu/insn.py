"""Naming the extension a faulting RISC-V instruction word belongs to.

Enough of the RISC-V unprivileged ISA (20191213 and the V 1.0, Zb*, Zicond and Zicbo*
specifications) to explain an illegal-instruction trap: the vector instructions
(``vsetvli`` and friends, vector loads and stores, OP-V arithmetic, the vector CSRs),
bit manipulation, conditional zero, cache-block operations, F/D/A/M and compressed forms.
"""

from __future__ import annotations

from dataclasses import dataclass

VECTOR_CSRS = {0x008: "vstart", 0x009: "vxsat", 0x00A: "vxrm", 0x00F: "vcsr",
               0xC20: "vl", 0xC21: "vtype", 0xC22: "vlenb"}
FLOAT_CSRS = {0x001: "fflags", 0x002: "frm", 0x003: "fcsr"}
COUNTER_CSRS = {0xC00: "cycle", 0xC01: "time", 0xC02: "instret"}
CSR_OPS = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}
EXTENSION_NAMES = {
    "v": "the vector extension V 1.0", "zba": "Zba (address generation)",
    "zbb": "Zbb (basic bit manipulation)", "zbc": "Zbc (carry-less multiply)",
    "zbs": "Zbs (single-bit instructions)", "zicond": "Zicond (conditional zero)",
    "zicbom": "Zicbom/Zicboz (cache-block operations)", "zicntr": "Zicntr (counters)",
    "f": "F (single-precision float)", "d": "D (double-precision float)",
    "m": "M (multiply/divide)", "a": "A (atomics)", "c": "C (compressed instructions)",
    "zfh": "Zfh (half-precision float)", "q": "Q (quad-precision float)",
}


@dataclass(frozen=True)
class Decoded:
    """What an instruction word is: a mnemonic (or its class) and the extension."""

    word: int
    mnemonic: str
    extension: str | None

    @property
    def extension_text(self) -> str:
        return EXTENSION_NAMES.get(self.extension or "", self.extension or "an unknown "
                                   "extension")


def decode(word: int) -> Decoded:
    """Classify ``word`` (a 32-bit instruction, or a 16-bit one in its low half)."""
    if word & 0b11 != 0b11:
        return Decoded(word & 0xFFFF, "compressed instruction", "c")
    opcode = word & 0x7F
    funct3 = (word >> 12) & 0b111
    funct7 = word >> 25
    handler = _BY_OPCODE.get(opcode)
    found = handler(word, funct3, funct7) if handler else None
    return Decoded(word, *(found or ("unknown instruction", None)))


def _op_v(word: int, funct3: int, funct7: int) -> tuple[str, str]:
    if funct3 == 0b111:
        if word >> 31 == 0:
            return "vsetvli", "v"
        return ("vsetivli", "v") if (word >> 30) & 1 else ("vsetvl", "v")
    return "vector arithmetic (OP-V)", "v"


_FP_WIDTHS = {1: ("h", "zfh"), 2: ("w", "f"), 3: ("d", "d"), 4: ("q", "q")}


def _load_fp(word: int, funct3: int, funct7: int) -> tuple[str, str]:
    if funct3 in _FP_WIDTHS:
        suffix, ext = _FP_WIDTHS[funct3]
        return f"fl{suffix}", ext
    eew = {0: 8, 5: 16, 6: 32, 7: 64}[funct3]
    return f"vector load (vle{eew}.v and friends)", "v"


def _store_fp(word: int, funct3: int, funct7: int) -> tuple[str, str]:
    if funct3 in _FP_WIDTHS:
        suffix, ext = _FP_WIDTHS[funct3]
        return f"fs{suffix}", ext
    eew = {0: 8, 5: 16, 6: 32, 7: 64}[funct3]
    return f"vector store (vse{eew}.v and friends)", "v"


def _system(word: int, funct3: int, funct7: int) -> tuple[str, str | None] | None:
    if funct3 == 0 or funct3 == 4:
        return None
    csr = word >> 20
    op = CSR_OPS[funct3]
    for table, ext in ((VECTOR_CSRS, "v"), (FLOAT_CSRS, "f"), (COUNTER_CSRS, "zicntr")):
        if csr in table:
            return f"{op} {table[csr]}", ext
    return f"{op} csr 0x{csr:03x}", None


def _op(word: int, funct3: int, funct7: int) -> tuple[str, str] | None:
    names = {
        (0x01, None): ("mul/div", "m"),
        (0x10, 2): ("sh1add", "zba"), (0x10, 4): ("sh2add", "zba"), (0x10, 6): ("sh3add", "zba"),
        (0x05, 1): ("clmul", "zbc"), (0x05, 2): ("clmulr", "zbc"), (0x05, 3): ("clmulh", "zbc"),
        (0x05, 4): ("min", "zbb"), (0x05, 5): ("minu", "zbb"), (0x05, 6): ("max", "zbb"),
        (0x05, 7): ("maxu", "zbb"), (0x20, 7): ("andn", "zbb"), (0x20, 6): ("orn", "zbb"),
        (0x20, 4): ("xnor", "zbb"), (0x30, 1): ("rol", "zbb"), (0x30, 5): ("ror", "zbb"),
        (0x07, 5): ("czero.eqz", "zicond"), (0x07, 7): ("czero.nez", "zicond"),
        (0x24, 1): ("bclr", "zbs"), (0x24, 5): ("bext", "zbs"), (0x14, 1): ("bset", "zbs"),
        (0x34, 1): ("binv", "zbs"),
    }
    return names.get((funct7, None if funct7 == 0x01 else funct3))


def _op_imm(word: int, funct3: int, funct7: int) -> tuple[str, str] | None:
    top6 = word >> 26
    if funct3 == 1 and top6 == 0x18:
        return "clz/ctz/cpop/sext", "zbb"
    if funct3 == 5 and top6 in (0x18, 0x1A):
        return ("rori", "zbb") if top6 == 0x18 else ("rev8", "zbb")
    if funct3 == 5 and (word >> 20) == 0x287:
        return "orc.b", "zbb"
    if funct3 in (1, 5) and top6 in (0x0A, 0x12, 0x1A):
        return {0x0A: "bseti", 0x12: "bclri/bexti", 0x1A: "binvi"}[top6], "zbs"
    return None


def _op_32(word: int, funct3: int, funct7: int) -> tuple[str, str] | None:
    if funct7 == 0x01:
        return "mulw/divw", "m"
    if funct7 == 0x04 and funct3 == 0:
        return "add.uw", "zba"
    if funct7 == 0x10 and funct3 in (2, 4, 6):
        return f"sh{funct3 // 2}add.uw", "zba"
    return None


def _misc_mem(word: int, funct3: int, funct7: int) -> tuple[str, str] | None:
    return ("cbo.*", "zicbom") if funct3 == 2 else None


_BY_OPCODE = {
    0x57: _op_v, 0x07: _load_fp, 0x27: _store_fp, 0x73: _system, 0x33: _op, 0x13: _op_imm,
    0x3B: _op_32, 0x0F: _misc_mem,
    0x2F: lambda w, f3, f7: ("atomic memory operation", "a"),
    0x53: lambda w, f3, f7: ("floating-point operation", "d" if (f7 & 3) == 1 else "f"),
}
