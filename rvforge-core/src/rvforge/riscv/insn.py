"""The deep sweep: find the instructions of optional extensions in RISC-V machine code.

Decoding is exact and vectorised (numpy). An instruction's length is set by its first
halfword (RISC-V unprivileged spec §1.5, binutils ``riscv_insn_length``): low bits not
``0b11`` is 16-bit, else low five bits not ``0b11111`` is 32-bit, longer forms otherwise.
With 16- and 32-bit instructions only, every halfword whose low bits are not ``0b11`` is
followed by an instruction start — whether it was a compressed instruction itself or the
upper half of a 32-bit one — so decoding resynchronises there: a halfword is a start when
an even number of halfwords separates it from the last such reset. That is one
``maximum.accumulate`` over the code. The rare 48-bit-and-longer encodings (in practice:
data) are then walked one by one until the two decodings agree again.

Like ``objdump -d``, decoding restarts at every symbol, and ranges the ``$d`` mapping
symbols mark as data are skipped, so the counts agree exactly with objdump's on objects
whose attribute lets objdump decode the extension (see tests/test_deep.py).

Each 32-bit instruction is then classified by its fields (:func:`classify`) into its
*class*: the extension that defines it, or, for an instruction two extensions define,
both names joined by ``|`` (``zbb|zbkb`` for ``ror``, see :func:`providers`) — a CPU with
either runs it. The classes: ``v`` (OP-V incl. ``vsetvl*``, vector loads/stores under
LOAD-FP/STORE-FP by width, CSR accesses to ``vl``/``vtype``/``vlenb``/``vstart``/
``vxrm``/``vxsat``/``vcsr``), ``zvbb``, ``zvbb|zvkb``, ``zvbc`` (inside OP-V), the
vector crypto extensions (OP-VE; ``zvknha|zvknhb`` for ``vsha2*``), ``zba``, ``zbb``,
``zbb|zbkb``, ``zbkb``, ``zbc``, ``zbc|zbkc``, ``zbkx``, ``zbs``, ``zfh``/``zfhmin``, ``zicond``,
``zacas``, ``zicbom``/``zicboz``, ``xtheadvector`` (the RVV 0.7.1 words 1.0 reserves),
T-Head's scalar extensions (``xtheadba``...), ``xventanacondops`` and SiFive's
``xsfvcp``, ``xsfvqmaccdod``, ``xsfvqmaccqoq`` and ``xsfvfnrclipxfqf`` by their custom
opcodes. HINT encodings (``pause``, ``prefetch.*``) are not
counted: they execute as no-ops everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SweepResult", "classify", "providers", "sweep", "vector_only"]

CHUNK_HALFWORDS = 1 << 16
"""Halfwords decoded per numpy pass (128 KiB of code): positions fit in ``uint16``, the
temporaries stay in the CPU's cache, and memory stays flat on 100 MB libraries."""

_INDEX = np.arange(CHUNK_HALFWORDS, dtype=np.uint16)

CLASSIFY_BATCH = 64
"""Chunks whose candidate words are classified together (fewer, larger numpy calls)."""

VECTOR_CSRS = (0x008, 0x009, 0x00A, 0x00F, 0xC20, 0xC21, 0xC22)
"""vstart, vxsat, vxrm, vcsr, vl, vtype, vlenb."""

RESERVED_OPCODES = (0x0B, 0x2B, 0x5B, 0x7B, 0x6B, 0x1F, 0x3F, 0x5F, 0x7F)
"""Major opcodes no standard extension uses (custom-0..3, reserved, longer encodings)."""


def providers(name: str) -> tuple[str, ...]:
    """The extensions any of which provides the instructions of class ``name``
    (``zbb|zbkb`` → ``("zbb", "zbkb")``; a plain extension name → itself)."""
    return tuple(name.split("|"))


@dataclass
class SweepResult:
    """What a sweep found.

    :param instructions: instruction class (an extension, or ``a|b`` for instructions
        both define: :func:`providers`) → number of instructions of it.
    :param vector_only: of the ``v`` words, those RVV 1.0 has and XTheadVector does not
        (:func:`vector_only`): with none, vector code may be either.
    :param total: instructions decoded.
    :param undecodable: instruction starts in reserved/custom opcode space or with a
        48-bit-or-longer length: data in the code, most likely.
    :param code_bytes: bytes swept.
    :param has_vsetvl: a ``vsetvl``/``vsetvli``/``vsetivli`` was seen (real vector code
        always configures ``vtype`` first; stray data matches rarely do).
    """

    instructions: Counter[str] = field(default_factory=Counter)
    vector_only: int = 0
    total: int = 0
    undecodable: int = 0
    code_bytes: int = 0
    has_vsetvl: bool = False

    def count(self, extension: str) -> int:
        """Instructions that belong to ``extension`` (its own and those it shares)."""
        return sum(n for name, n in self.instructions.items()
                   if extension in providers(name))

    def merge(self, other: SweepResult) -> None:
        self.instructions.update(other.instructions)
        self.vector_only += other.vector_only
        self.total += other.total
        self.undecodable += other.undecodable
        self.code_bytes += other.code_bytes
        self.has_vsetvl = self.has_vsetvl or other.has_vsetvl


def sweep(code: bytes | memoryview, address: int = 0, restarts: Iterable[int] = (),
          data_ranges: Sequence[tuple[int, int]] = ()) -> SweepResult:
    """Decode ``code`` (loaded at ``address``) and count instructions per extension.

    :param restarts: addresses (symbols) where decoding starts afresh, as objdump does.
    :param data_ranges: ``(start, end)`` address ranges that are data, not code.
    """
    h = np.frombuffer(code, dtype="<u2", count=len(code) // 2)
    n = len(h)
    result = SweepResult(code_bytes=len(code))
    if n == 0:
        return result
    reset = np.zeros(n, dtype=bool)
    data = np.zeros(n, dtype=bool)
    end = address + 2 * n
    # in Python ints: a symbol may lie 2^63 or more away from the code (absolute symbols
    # of a kernel linked at 0xffffffff80000000)
    offsets = [(a - address) // 2 for a in restarts if address <= a < end and a % 2 == address % 2]
    reset[np.array(offsets, dtype=np.int64)] = True
    for start, end in data_ranges:
        lo, hi = max(0, (start - address + 1) // 2), min(n, (end - address + 1) // 2)
        if lo < hi:
            data[lo:hi] = True
            if hi < n:
                reset[hi] = True
    begin = 0
    batch: list[np.ndarray] = []
    while begin < n:
        stop = min(n, begin + CHUNK_HALFWORDS)
        is_start, following = _decode(h, reset, begin, stop)
        is_start &= ~data[begin:stop]
        result.total += int(np.count_nonzero(is_start))
        batch.append(_candidates(h, begin, is_start))
        if len(batch) >= CLASSIFY_BATCH or following >= n:
            _classify_into(result, np.concatenate(batch))
            batch = []
        begin = following
    return result


def _decode(h: np.ndarray, reset: np.ndarray, begin: int, stop: int
            ) -> tuple[np.ndarray, int]:
    """Which halfwords of ``h[begin:stop]`` start an instruction (``begin`` does), and
    where decoding continues after ``stop``."""
    chunk = h[begin:stop]
    n = len(chunk)
    r = reset[begin:stop].copy()
    r[0] = True
    r[1:] |= _COMPRESSED[chunk[:-1]]
    idx = _INDEX[:n]
    last = np.multiply(idx, r, dtype=np.uint16)
    np.maximum.accumulate(last, out=last)
    np.bitwise_xor(last, idx, out=last)
    is_start = (last & 1) == 0
    longs = np.flatnonzero(is_start & _LONG[chunk])
    resume = 0
    for p in longs.tolist():
        if p < resume or not is_start[p]:
            continue
        resume = _walk(chunk, is_start, p)
    window = max(0, n - 12)  # the last start is within the longest instruction's reach
    tail = window + int(np.flatnonzero(is_start[window:])[-1])
    following = begin + tail + _length(int(chunk[tail]))
    return is_start, max(following, stop)


def _walk(chunk: np.ndarray, is_start: np.ndarray, p: int) -> int:
    """Decode one by one from the long instruction at ``p`` until a start where the
    vectorised decoding (16/32-bit only) agrees again; fix ``is_start`` on the way."""
    n = len(chunk)
    pos = p
    while pos < n:
        length = _length(int(chunk[pos]))
        if pos > p and length <= 2 and is_start[pos]:
            return pos
        is_start[pos] = True
        is_start[pos + 1:pos + length] = False
        pos += length
    return pos


def _length(halfword: int) -> int:
    """Instruction length in halfwords (binutils ``riscv_insn_length``)."""
    if halfword & 0x3 != 0x3:
        return 1
    if halfword & 0x1F != 0x1F:
        return 2
    if halfword & 0x3F == 0x1F:
        return 3
    if halfword & 0x7F == 0x3F:
        return 4
    if halfword & 0x7F == 0x7F and halfword & 0x7000 != 0x7000:
        return 5 + ((halfword >> 12) & 0x7)
    return 1


def _candidates(h: np.ndarray, begin: int, is_start: np.ndarray) -> np.ndarray:
    """The 32-bit words of the instructions starting at ``is_start`` in ``h[begin:]``
    whose opcode and funct3 may belong to a classified extension."""
    chunk = h[begin:begin + len(is_start)]
    at = np.flatnonzero(is_start & _INTERESTING[chunk]) + begin
    at = at[at + 1 < len(h)]
    return h[at].astype(np.uint32) | (h[at + 1].astype(np.uint32) << 16)


def _classify_into(result: SweepResult, words: np.ndarray) -> None:
    counts, has_vsetvl, reserved = classify(words)
    result.instructions.update(counts)
    result.vector_only += vector_only(words)
    result.has_vsetvl = result.has_vsetvl or has_vsetvl
    result.undecodable += reserved


def _interesting_table() -> np.ndarray:
    """First halfword → whether the instruction may belong to a classified extension
    (opcode and funct3 are in the low 15 bits), so that only those are looked at."""
    half = np.arange(1 << 16, dtype=np.uint32)
    op, f3 = half & 0x7F, (half >> 12) & 7
    any_f3 = np.isin(op, (0x57, 0x33, 0x53, 0x43, 0x47, 0x4B, 0x4F, *RESERVED_OPCODES))
    return (
        any_f3
        | ((op == 0x77) & (f3 == 2))
        | (((op == 0x07) | (op == 0x27)) & (f3 != 2) & (f3 != 3) & (f3 != 4))
        | ((op == 0x73) & (f3 != 0) & (f3 != 4))
        | ((op == 0x3B) & (f3 != 7))
        | (((op == 0x13) | (op == 0x1B)) & ((f3 == 1) | (f3 == 5)))
        | ((op == 0x2F) & (f3 >= 2) & (f3 <= 4))
        | ((op == 0x0F) & (f3 == 2))
    )


_HALFWORDS = np.arange(1 << 16, dtype=np.uint32)
_COMPRESSED = (_HALFWORDS & 3) != 3
"""First halfword → a 16-bit instruction."""
_LONG = (_HALFWORDS & 0x1F) == 0x1F
"""First halfword → a 48-bit-or-longer instruction."""
_INTERESTING = _interesting_table()


def classify(words: np.ndarray) -> tuple[Counter[str], bool, int]:
    """Count 32-bit instruction ``words`` per extension.

    :returns: (extension → count, whether a ``vsetvl*`` was seen, reserved-opcode count)
    """
    w = words
    op = w & 0x7F
    f3 = (w >> 12) & 7
    f7 = w >> 25
    rs2 = (w >> 20) & 0x1F
    imm = w >> 20
    counts: Counter[str] = Counter()

    def add(ext: str, mask: np.ndarray) -> None:
        c = int(np.count_nonzero(mask))
        if c:
            counts[ext] += c

    # -- V, Zvbb, Zvbc (OP-V) --------------------------------------------------------
    opv = op == 0x57
    f6 = w >> 26
    vs1 = (w >> 15) & 0x1F
    vsetvl = opv & (f3 == 7) & (((w >> 31) == 0) | ((w >> 30) == 3) | (f7 == 0x40))
    # Zvkb's instructions (vandn, vbrev8, vrev8, vrol, vror) are Zvbb's too
    zvkb = opv & (
        ((f6 == 0b000001) & ((f3 == 0) | (f3 == 4)))
        | ((f6 == 0b010101) & ((f3 == 0) | (f3 == 4)))
        | (((f6 == 0b010100) | (f6 == 0b010101)) & (f3 == 3))
        | ((f6 == 0b010100) & ((f3 == 0) | (f3 == 4)))
        | ((f6 == 0b010010) & (f3 == 2) & _among(vs1, (8, 9)))
    )
    zvbb = opv & (
        ((f6 == 0b010010) & (f3 == 2) & _among(vs1, (10, 12, 13, 14)))
        | ((f6 == 0b110101) & ((f3 == 0) | (f3 == 4) | (f3 == 3)))
    )
    zvbc = opv & ((f6 == 0b001100) | (f6 == 0b001101)) & ((f3 == 2) | (f3 == 6))
    thead_vector = _thead_vector_only(w, op, f3, f6, vs1)
    add("v", (opv & (f3 != 7) & ~zvbb & ~zvkb & ~zvbc & ~thead_vector) | vsetvl
        | _vector_memory(w, op, f3, rs2)
        | ((op == 0x73) & (f3 != 0) & (f3 != 4) & _among(imm, VECTOR_CSRS)))
    add("xtheadvector", thead_vector)
    add("zvbb", zvbb)
    add("zvbb|zvkb", zvkb)
    add("zvbc", zvbc)
    # -- vector crypto (OP-VE) -------------------------------------------------------
    opve = (op == 0x77) & (f3 == 2)
    aes_like = opve & ((f6 == 0b101000) | (f6 == 0b101001))
    add("zvkned", (aes_like & _among(vs1, (0, 1, 2, 3, 7)))
        | (opve & ((f6 == 0b100010) | (f6 == 0b101010))))
    add("zvksed", (aes_like & (vs1 == 0b10000)) | (opve & (f6 == 0b100001)))
    add("zvkg", (aes_like & (vs1 == 0b10001)) | (opve & (f6 == 0b101100)))
    add("zvksh", opve & ((f6 == 0b100000) | (f6 == 0b101011)))
    add("zvknha|zvknhb", opve & ((f6 == 0b101101) | (f6 == 0b101110) | (f6 == 0b101111)))
    # -- bit manipulation ------------------------------------------------------------
    r_op, r_op32 = op == 0x33, op == 0x3B
    i_op, i_op32 = op == 0x13, op == 0x1B
    even3 = (f3 == 2) | (f3 == 4) | (f3 == 6)
    add("zba", ((r_op | r_op32) & (f7 == 0x10) & even3) | (r_op32 & (f7 == 0x04) & (f3 == 0))
        | (i_op32 & (f3 == 1) & ((w >> 26) == 0b000010)))
    # andn, orn, xnor, rol(w), ror(i)(w), rev8 and zext.h (packw rd, rs1, x0) are Zbkb's too
    add("zbb|zbkb", (r_op & (f7 == 0x20) & ((f3 == 4) | (f3 == 6) | (f3 == 7)))
        | ((r_op | r_op32) & (f7 == 0x30) & ((f3 == 1) | (f3 == 5)))
        | (i_op & (f3 == 5) & (((w >> 26) == 0b011000) | (imm == 0x6B8)))
        | (i_op32 & (f3 == 5) & (f7 == 0x30))
        | (r_op32 & (f7 == 0x04) & (f3 == 4) & (rs2 == 0)))
    add("zbb", (r_op & (f7 == 0x05) & (f3 >= 4))
        | (i_op & (f3 == 1) & _among(imm, (0x600, 0x601, 0x602, 0x604, 0x605)))
        | (i_op & (f3 == 5) & (imm == 0x287))
        | (i_op32 & (f3 == 1) & _among(imm, (0x600, 0x601, 0x602))))
    add("zbkb", (r_op & (f7 == 0x04) & ((f3 == 4) | (f3 == 7)))  # pack, packh
        | (r_op32 & (f7 == 0x04) & (f3 == 4) & (rs2 != 0))  # packw
        | (i_op & (f3 == 5) & (imm == 0x687)))  # brev8
    add("zbc|zbkc", r_op & (f7 == 0x05) & ((f3 == 1) | (f3 == 3)))  # clmul, clmulh
    add("zbc", r_op & (f7 == 0x05) & (f3 == 2))  # clmulr
    add("zbkx", r_op & (f7 == 0x14) & ((f3 == 2) | (f3 == 4)))  # xperm4, xperm8
    add("zbs", (r_op & (((f7 == 0x24) & ((f3 == 1) | (f3 == 5))) | ((f7 == 0x14) & (f3 == 1))
                        | ((f7 == 0x34) & (f3 == 1))))
        | (i_op & (f3 == 1) & _among(w >> 26, (0b010010, 0b001010, 0b011010)))
        | (i_op & (f3 == 5) & ((w >> 26) == 0b010010)))
    add("zicond", r_op & (f7 == 0x07) & ((f3 == 5) | (f3 == 7)))
    # -- half precision --------------------------------------------------------------
    fmt = (w >> 25) & 3
    f5 = w >> 27
    opfp = op == 0x53
    h_minimal = opfp & (
        (((f7 == 0b1110010) | (f7 == 0b1111010)) & (rs2 == 0) & (f3 == 0))  # fmv.x.h/h.x
        | ((f5 == 0b01000) & (fmt != 2) & (rs2 == 2))  # fcvt.{s,d,q}.h
        | ((f7 == 0b0100010) & _among(rs2, (0, 1, 3)))  # fcvt.h.{s,d,q}
    )
    add("zfhmin", h_minimal | (((op == 0x07) | (op == 0x27)) & (f3 == 1)))
    fma = (op == 0x43) | (op == 0x47) | (op == 0x4B) | (op == 0x4F)
    add("zfh", ((opfp & (fmt == 2)) & ~h_minimal) | (fma & (fmt == 2)))
    # -- atomics and cache-block operations ------------------------------------------
    add("zacas", (op == 0x2F) & ((w >> 27) == 0b00101) & (f3 >= 2) & (f3 <= 4))
    cbo = (op == 0x0F) & (f3 == 2) & (((w >> 7) & 0x1F) == 0)
    add("zicbom", cbo & (imm <= 2))
    add("zicboz", cbo & (imm == 4))
    vendor = _vendor(w, op, f3, f7, rs2, add)
    reserved = int(np.count_nonzero(_among(op, RESERVED_OPCODES) & ~vendor))
    return counts, bool(np.any(vsetvl)), reserved


def _thead_vector_only(w: np.ndarray, op: np.ndarray, f3: np.ndarray, f6: np.ndarray,
                       vs1: np.ndarray) -> np.ndarray:
    """XTheadVector (RVV 0.7.1) words that RVV 1.0 reserves: the sign-extending, strided
    and indexed loads and stores with bit 28 set (1.0's ``mew``), and the OP-V functions
    0.7.1 kept where 1.0 moved them (``th.vfmv.f.s``/``th.vfmv.s.f``, ``th.vmpopc.m``,
    ``th.vmfirst.m``, 0.7.1's mask-unary group). binutils 2.44 decodes each as a ``th.v*``
    instruction only under ``xtheadvector`` (tests/test_vendor_isa.py)."""
    memory = ((op == 0x07) | (op == 0x27)) & ((f3 == 0) | (f3 >= 5)) & (((w >> 28) & 1) == 1)
    opv = op == 0x57
    moved = opv & (((f3 == 1) & (f6 == 0b001100)) | ((f3 == 5) & (f6 == 0b001101))
                   | ((f3 == 2) & ((f6 == 0b010101) | (f6 == 0b010110)))
                   | ((f3 == 2) & (f6 == 0b010100) & (vs1 == 0)))
    return memory | moved


def vector_only(words: np.ndarray) -> int:
    """How many of ``words`` are RVV 1.0 instructions XTheadVector (0.7.1) does not have:
    ``vsetivli``, whole-register and mask loads/stores, unordered indexed accesses, the
    moved scalar-move/unary groups (``vmv.x.s``, ``vcpop.m``, ``vzext``...) and
    ``vmv<n>r.v``. The other vector words decode under both, with different meanings."""
    w = words
    op, f3, f6 = w & 0x7F, (w >> 12) & 7, w >> 26
    vs1, rs2 = (w >> 15) & 0x1F, (w >> 20) & 0x1F
    opv = op == 0x57
    vmem = ((op == 0x07) | (op == 0x27)) & ((f3 == 0) | (f3 >= 5)) & (((w >> 28) & 1) == 0)
    mop = (w >> 26) & 3
    only = (
        (opv & (f3 == 7) & ((w >> 30) == 3))
        | (vmem & (mop == 0) & ((rs2 == 8) | (rs2 == 0xB)))
        | (vmem & (mop == 1))
        | (opv & (f6 == 0b010000) & ((f3 == 1) | (f3 == 2) | (f3 == 5) | (f3 == 6)))
        | (opv & (f3 == 2) & (f6 == 0b010010) & ~_among(vs1, (8, 9, 10, 12, 13, 14)))
        | (opv & (f3 == 3) & (f6 == 0b100111))
    )
    return int(np.count_nonzero(only))


def _vendor(w: np.ndarray, op: np.ndarray, f3: np.ndarray, f7: np.ndarray, rs2: np.ndarray,
            add: Callable[[str, np.ndarray], None]) -> np.ndarray:
    """Count the custom-opcode words of the vendor extensions binutils 2.44 decodes for
    RV64 (T-Head's scalar extensions in custom-0, Ventana's condops in custom-3, SiFive's
    VCIX, int8 matrix multiply-accumulate and FP32-to-int8 clip in custom-2) and return
    which words were so classified."""
    f5 = w >> 27
    th = op == 0x0B
    one = th & (f3 == 1)
    sync = th & (f3 == 0) & (((f7 == 0) & _among(rs2, (0x18, 0x19, 0x1A, 0x1B)))
                             | (f7 == 0b0000010))
    cmo = th & (f3 == 0) & ((f7 == 0) | (f7 == 1)) & ~sync
    pair = (f5 == 0b11100) | (f5 == 0b11110) | (f5 == 0b11111)
    sifive, f4 = op == 0x5B, w >> 28  # SiFive's vector extensions share custom-2
    sifive_dod = sifive & (f3 == 2) & (f4 == 0b1011)
    sifive_qoq = sifive & (f3 == 2) & (f4 == 0b1111)
    sifive_clip = sifive & (f3 == 5) & ((w >> 27) == 0b10001)
    found = {
        "xtheadba": one & (f5 == 0),
        "xtheadbb": (one & (((w >> 26) == 0b000100) | (f7 == 0b0001010)
                            | (((f7 == 0b1000000) | (f7 == 0b1000001) | (f7 == 0b1000010)
                                | (f7 == 0b1000011) | (f7 == 0b1001000)) & (rs2 == 0))))
                    | (th & ((f3 == 2) | (f3 == 3))),
        "xtheadbs": one & ((w >> 26) == 0b100010),
        "xtheadmac": one & (f7 >= 0b0010000) & (f7 <= 0b0010101),
        "xtheadcondmov": one & ((f7 == 0b0100000) | (f7 == 0b0100001)),
        "xtheadsync": sync,
        "xtheadcmo": cmo,
        "xtheadmempair": th & ((f3 == 4) | (f3 == 5)) & pair,
        "xtheadmemidx": th & ((f3 == 4) | (f3 == 5)) & ~pair,
        "xtheadfmemidx": th & ((f3 == 6) | (f3 == 7)),
        "xventanacondops": (op == 0x7B) & (f7 == 0) & ((f3 == 6) | (f3 == 7)),
        "xsfvqmaccdod": sifive_dod,
        "xsfvqmaccqoq": sifive_qoq,
        "xsfvfnrclipxfqf": sifive_clip,
        "xsfvcp": sifive & ~sifive_dod & ~sifive_qoq & ~sifive_clip,
    }
    seen = np.zeros(len(w), dtype=bool)
    for name, mask in found.items():
        add(name, mask)
        seen |= mask
    return seen


def _among(values: np.ndarray, members: tuple[int, ...]) -> np.ndarray:
    """``np.isin`` for small non-negative fields, as one table lookup (several times
    faster on millions of words)."""
    table = np.zeros(max(members) + 1, dtype=bool)
    table[list(members)] = True
    return table[np.minimum(values, len(table) - 1)] & (values < len(table))


def _vector_memory(w: np.ndarray, op: np.ndarray, f3: np.ndarray, rs2: np.ndarray
                   ) -> np.ndarray:
    """Vector loads (LOAD-FP) and stores (STORE-FP): widths 0, 5, 6, 7 with mew clear."""
    load, store = op == 0x07, op == 0x27
    width_ok = ((f3 == 0) | (f3 >= 5)) & (((w >> 28) & 1) == 0)
    mop = (w >> 26) & 3
    nf = w >> 29
    vm = (w >> 25) & 1
    whole = (rs2 == 8) & (vm == 1) & _among(nf, (0, 1, 3, 7))
    mask_op = (rs2 == 0xB) & (f3 == 0) & (nf == 0) & (vm == 1)
    unit_load = (rs2 == 0) | (rs2 == 0x10) | whole | mask_op
    unit_store = (rs2 == 0) | (whole & (f3 == 0)) | mask_op
    return width_ok & ((load & ((mop != 0) | unit_load)) | (store & ((mop != 0) | unit_store)))
