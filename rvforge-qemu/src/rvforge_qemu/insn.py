"""Naming a faulting RISC-V instruction word and the extension it belongs to.

The extension of an optional-extension instruction (V, Zb*, Zicond, Zfh, Zicbo*, vector
crypto, and the vendor extensions binutils decodes: T-Head's, Ventana's, SiFive's VCIX)
comes from rvforge's own classifier, :func:`rvforge.riscv.insn.classify` (the one the
deep audit uses); what it leaves out is base-ISA territory, named here: C, M, A,
F/D and the counter CSRs. The mnemonic is spelled out for the vector forms a trap
report most often shows (``vsetvli``, vector loads and stores, ``csrr vlenb``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rvforge.riscv.insn import classify

CSR_NAMES = {0x008: "vstart", 0x009: "vxsat", 0x00A: "vxrm", 0x00F: "vcsr", 0xC20: "vl",
             0xC21: "vtype", 0xC22: "vlenb", 0x001: "fflags", 0x002: "frm", 0x003: "fcsr",
             0xC00: "cycle", 0xC01: "time", 0xC02: "instret"}
CSR_OPS = {1: "csrrw", 2: "csrrs", 3: "csrrc", 5: "csrrwi", 6: "csrrsi", 7: "csrrci"}
EXTENSION_NAMES = {
    "v": "the vector extension V 1.0", "zba": "Zba (address generation)",
    "zbb": "Zbb (basic bit manipulation)", "zbc": "Zbc (carry-less multiply)",
    "zbkb": "Zbkb (bit manipulation for cryptography)",
    "zbkc": "Zbkc (carry-less multiply for cryptography)",
    "zbs": "Zbs (single-bit instructions)", "zicond": "Zicond (conditional zero)",
    "zicbom": "Zicbom (cache-block management)", "zicboz": "Zicboz (cache-block zero)",
    "zicntr": "Zicntr (counters)", "zfh": "Zfh (half-precision float)",
    "zfhmin": "Zfhmin (half-precision conversions)", "f": "F (single-precision float)",
    "d": "D (double-precision float)", "m": "M (multiply/divide)", "a": "A (atomics)",
    "c": "C (compressed instructions)",
    "xtheadvector": "XTheadVector (T-Head's vector extension, RVV 0.7.1, not V 1.0)",
    "xtheadba": "XTheadBa (T-Head address calculation)",
    "xtheadbb": "XTheadBb (T-Head basic bit manipulation)",
    "xtheadbs": "XTheadBs (T-Head single-bit test)",
    "xtheadcmo": "XTheadCmo (T-Head cache management)",
    "xtheadcondmov": "XTheadCondMov (T-Head conditional move)",
    "xtheadfmemidx": "XTheadFMemIdx (T-Head indexed float loads/stores)",
    "xtheadmac": "XTheadMac (T-Head multiply-accumulate)",
    "xtheadmemidx": "XTheadMemIdx (T-Head indexed loads/stores)",
    "xtheadmempair": "XTheadMemPair (T-Head paired loads/stores)",
    "xtheadsync": "XTheadSync (T-Head synchronisation)",
    "xventanacondops": "XVentanaCondOps (Ventana conditional zero)",
    "xsfvcp": "XSfVcp (SiFive vector coprocessor interface)",
    "xsfvqmaccdod": "XSfVqmaccdod (SiFive int8 matrix multiply-accumulate)",
    "xsfvqmaccqoq": "XSfVqmaccqoq (SiFive int8 matrix multiply-accumulate)",
    "xsfvfnrclipxfqf": "XSfVfnrclipxfqf (SiFive FP32-to-int8 clip)",
}
VENDORS = {"xthead": "T-Head", "xventana": "Ventana", "xsf": "SiFive"}
VECTOR_EEW = {0: 8, 5: 16, 6: 32, 7: 64}


@dataclass(frozen=True)
class Decoded:
    """What an instruction word is: a mnemonic (or its class) and its extension."""

    word: int
    mnemonic: str
    extension: str | None
    """The extension, or ``a|b`` for an instruction that either provides (rev8: Zbb, Zbkb)."""

    @property
    def alternatives(self) -> tuple[str, ...]:
        """The extensions any one of which makes the instruction legal."""
        return tuple(self.extension.split("|")) if self.extension else ()

    @property
    def extension_text(self) -> str:
        if not self.extension:
            return "no extension"
        return " or ".join(EXTENSION_NAMES.get(e, e) for e in self.alternatives)


def decode(word: int) -> Decoded:
    """Classify ``word`` (a 32-bit instruction, or a 16-bit one in its low half)."""
    if word & 0b11 != 0b11:
        return Decoded(word & 0xFFFF, "compressed instruction", "c")
    counts, _, _ = classify(np.array([word], dtype=np.uint32))
    extension = next(iter(counts), None) or _base_extension(word)
    return Decoded(word, _mnemonic(word, extension), extension)


def _mnemonic(word: int, extension: str | None) -> str:
    opcode, funct3 = word & 0x7F, (word >> 12) & 0b111
    if opcode == 0x73 and funct3 not in (0, 4):
        csr = word >> 20
        return f"{CSR_OPS[funct3]} {CSR_NAMES.get(csr, f'csr 0x{csr:03x}')}"
    if extension == "v" and opcode == 0x57:
        if funct3 != 0b111:
            return "a vector arithmetic instruction (OP-V)"
        if word >> 31 == 0:
            return "vsetvli"
        return "vsetivli" if (word >> 30) & 1 else "vsetvl"
    if extension == "v" and opcode in (0x07, 0x27):
        eew = VECTOR_EEW[funct3]
        kind = "load (vle" if opcode == 0x07 else "store (vse"
        return f"a vector {kind}{eew}.v family)"
    if extension == "xtheadvector":
        return "an XTheadVector (RVV 0.7.1) instruction (th.v*)"
    vendor = next((v for prefix, v in VENDORS.items() if (extension or "").startswith(prefix)),
                  None)
    if vendor is not None:
        return f"a {vendor} custom instruction"
    return "an instruction"


def _base_extension(word: int) -> str | None:
    """Extensions of instructions the deep-audit classifier does not count."""
    opcode, funct3, funct7 = word & 0x7F, (word >> 12) & 0b111, word >> 25
    if opcode in (0x33, 0x3B) and funct7 == 0x01:
        return "m"
    if opcode == 0x2F:
        return "a"
    if opcode in (0x53, 0x43, 0x47, 0x4B, 0x4F):
        return "d" if funct7 & 0b11 == 1 else "f"
    if opcode in (0x07, 0x27) and funct3 in (2, 3):
        return "f" if funct3 == 2 else "d"
    if opcode == 0x73 and funct3 not in (0, 4):
        csr = word >> 20
        if csr in (0x001, 0x002, 0x003):
            return "f"
        if 0xC00 <= csr <= 0xC1F:
            return "zicntr"
    return None
