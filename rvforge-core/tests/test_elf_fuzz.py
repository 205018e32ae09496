"""The ELF reader and the deep sweep on arbitrary bytes (hypothesis, bounded): a result or
an ``ElfUnreadableError``, never another exception, and code ranges inside the file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fixture_types import RiscvCC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvforge.riscv.elf import ElfUnreadableError, read_elf, read_symbols
from rvforge.riscv.insn import sweep

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def elf64_header(e_type: int, e_machine: int, phoff: int, shoff: int, phnum: int,
                 shnum: int, shstrndx: int, big: bool) -> bytes:
    order = ">" if big else "<"
    ident = b"\x7fELF" + bytes([2, 2 if big else 1, 1]) + bytes(9)
    return ident + struct.pack(order + "HHIQQQIHHHHHH", e_type, e_machine, 1, 0, phoff,
                               shoff, 0x5, 64, 56, phnum, 64, shnum, shstrndx)


def audit_bytes(data: bytes) -> None:
    """What ``rvforge audit --deep`` does with a file: read it, its symbols, sweep its code."""
    try:
        info = read_elf(data)
        symbols = read_symbols(data)
    except ElfUnreadableError:
        return
    for code in info.code:
        assert 0 <= code.size and code.offset + code.size <= len(data) or code.size == 0
        sweep(data[code.offset:code.offset + code.size], code.address, symbols.code_symbols,
              symbols.data_ranges)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_the_magic(tail: bytes) -> None:
    audit_bytes(b"\x7fELF" + tail)


@FUZZ
@given(e_type=st.sampled_from([1, 2, 3, 4, 0xFFFF]),
       phoff=st.sampled_from([64, 0, 1 << 40, (1 << 64) - 1]),
       shoff=st.sampled_from([0, 64, 120, (1 << 63)]),
       phnum=st.integers(0, 8), shnum=st.integers(0, 8), shstrndx=st.integers(0, 0xFFFF),
       big=st.booleans(), body=st.binary(min_size=0, max_size=768))
def test_riscv_headers_with_arbitrary_tables(e_type: int, phoff: int, shoff: int,
                                             phnum: int, shnum: int, shstrndx: int,
                                             big: bool, body: bytes) -> None:
    audit_bytes(elf64_header(e_type, 243, phoff, shoff, phnum, shnum, shstrndx, big) + body)


@FUZZ
@given(data=st.data())
def test_a_real_program_with_bytes_overwritten(data: st.DataObject, hello: bytes) -> None:
    blob = bytearray(hello)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(blob) - 8))
        blob[at:at + 8] = data.draw(st.binary(min_size=8, max_size=8))
    audit_bytes(bytes(blob))


@pytest.fixture(scope="module")
def hello(riscv_cc: RiscvCC) -> bytes:
    path: Path = riscv_cc.program("hello", "hello-fuzz", "-O2", "-march=rv64gc_zba_zbb")
    return path.read_bytes()
