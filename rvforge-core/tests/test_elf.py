"""ELF reading on real cross-compiled objects, and on broken input (never an exception)."""

from __future__ import annotations

import importlib.util
import io
import random
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import RISCVAttributesSection
from fixture_types import RiscvCC

from rvforge.errors import InputError
from rvforge.riscv.elf import (
    ElfInfo,
    ElfSymbols,
    ElfUnreadableError,
    parse_attributes,
    read_elf,
    read_symbols,
)

START_LP64 = 'void _start(void) { __asm__ volatile("li a7, 93\\n li a0, 0\\n ecall"); for (;;); }\n'
UNKNOWN_TAGS = ('.attribute 98, 5\n.attribute 101, "hello"\n'
                '.text\n.globl f\nf: ret\n')
AUXV = ('#include <sys/auxv.h>\n#include <stdio.h>\n'
        'int main(void) { printf("%lu\\n", getauxval(AT_HWCAP)); return 0; }\n')


def test_dynamic_vector_program(riscv_cc: RiscvCC) -> None:
    path = riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv")
    info = read_elf(path.read_bytes())
    assert info.is_riscv and info.elf_class == 64 and info.e_type == "ET_DYN"
    assert info.arch is not None and "_v1p0_" in info.arch and "zvl128b1p0" in info.arch
    assert info.rvc and info.float_abi == "double" and info.abi == "lp64d"
    assert not info.rve and not info.tso
    assert info.interp == "/lib/ld-linux-riscv64-lp64d.so.1"
    assert info.needed == ("libc.so.6",)
    assert "GLIBC_2.34" in info.version_needs["libc.so.6"]
    assert {c.name for c in info.code} >= {".text"}
    assert info.dynamic and read_symbols(path.read_bytes()).dispatch_imports == ()


def test_static_program(riscv_cc: RiscvCC) -> None:
    info = read_elf(riscv_cc.program("hello", "hello-static", "-O2", "-static").read_bytes())
    assert info.interp is None and info.needed == () and not info.dynamic
    assert info.e_type == "ET_EXEC" and info.arch and info.arch.startswith("rv64i2p1_m2p0")


def test_lp64_soft_float(riscv_cc: RiscvCC) -> None:
    path = riscv_cc(START_LP64, "lp64", "-O2", "-static", "-nostdlib", "-march=rv64imac",
                    "-mabi=lp64")
    info = read_elf(path.read_bytes())
    assert info.float_abi == "soft" and info.abi == "lp64" and info.rvc
    assert "_f2p2" not in (info.arch or "")


def test_unknown_attribute_tags_use_the_fallback_parser(riscv_cc: RiscvCC) -> None:
    obj = riscv_cc(UNKNOWN_TAGS, "unknown-tags", "-c", suffix=".s")
    with open(obj, "rb") as stream:  # pyelftools alone cannot read it
        section = ELFFile(stream).get_section_by_name(".riscv.attributes")
        assert isinstance(section, RISCVAttributesSection)
        with pytest.raises(Exception):  # noqa: B017 - whatever pyelftools raises
            [a for s in section.iter_subsections() for ss in s.iter_subsubsections()
             for a in ss.iter_attributes()]
    info = read_elf(obj.read_bytes())
    assert info.attributes[98] == 5 and info.attributes[101] == "hello"
    assert info.arch and info.arch.startswith("rv64i2p1")


def test_parse_attributes_agrees_with_pyelftools(riscv_cc: RiscvCC) -> None:
    path = riscv_cc.program("hello", "hello-static", "-O2", "-static")
    with open(path, "rb") as stream:
        section = ELFFile(stream).get_section_by_name(".riscv.attributes")
        assert isinstance(section, RISCVAttributesSection)
        theirs = {a.tag: a.value for s in section.iter_subsections()
                  for ss in s.iter_subsubsections() for a in ss.iter_attributes()}
        ours = parse_attributes(section.data())
    assert ours[5] == theirs["TAG_ARCH"] and ours[4] == theirs["TAG_STACK_ALIGN"]


def test_attributes_from_segment_when_sections_are_stripped(
        riscv_cc: RiscvCC, tmp_path: Path) -> None:
    data = bytearray(riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv").read_bytes())
    expected = read_elf(bytes(data))
    # drop the section header table: e_shoff (0x28, 8 bytes), e_shnum, e_shstrndx
    data[0x28:0x30] = bytes(8)
    data[0x3C:0x40] = bytes(4)
    info = read_elf(bytes(data))
    assert info.arch == expected.arch
    assert info.interp == expected.interp and info.needed == expected.needed
    assert info.code and all(c.name.startswith("PT_LOAD") for c in info.code)


def test_runpath_rpath_and_version_definitions(riscv_cc: RiscvCC, tmp_path: Path) -> None:
    script = tmp_path / "vers.map"
    script.write_text("VERS_1.0 { global: f; local: *; };\nVERS_2.0 { global: g; } VERS_1.0;\n")
    lib = riscv_cc("int f(void){return 1;}\nint g(void){return 2;}\n", "libv.so", "-shared",
                   "-fPIC", f"-Wl,--version-script={script}", "-Wl,-soname,libv.so.1")
    info = read_elf(lib.read_bytes())
    assert info.soname == "libv.so.1" and info.version_defs == ("VERS_1.0", "VERS_2.0")
    new = read_elf(riscv_cc.program("hello", "runpath", "-Wl,-rpath,$ORIGIN/../lib",
                            "-Wl,--enable-new-dtags").read_bytes())
    old = read_elf(riscv_cc.program("hello", "rpath", "-Wl,-rpath,/opt/a:/opt/b",
                            "-Wl,--disable-new-dtags").read_bytes())
    assert new.runpath == ("$ORIGIN/../lib",) and new.rpath == ()
    assert old.rpath == ("/opt/a", "/opt/b") and old.runpath == ()


def test_dispatch_imports(riscv_cc: RiscvCC) -> None:
    symbols = read_symbols(riscv_cc(AUXV, "auxv", "-O2").read_bytes())
    assert symbols.dispatch_imports == ("getauxval",) and "getauxval" in symbols.imports


def test_host_binary_is_not_riscv() -> None:
    info = read_elf(Path("/bin/true").read_bytes())
    assert not info.is_riscv and info.machine == "EM_X86_64" and info.arch is None


def test_truncated_and_corrupt_input_never_raises_anything_else(riscv_cc: RiscvCC) -> None:
    data = riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv").read_bytes()
    rng = random.Random(3)
    cases = [data[:n] for n in (0, 4, 16, 52, 64, 200, 1000, len(data) // 2, len(data) - 1)]
    for _ in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 40)):
            pos = rng.randrange(len(mutated)) if rng.random() < 0.5 else rng.randrange(64)
            mutated[pos] = rng.randrange(256)
        cases.append(bytes(mutated))
    failures = 0
    for case in cases:
        try:
            read_elf(case)
        except ElfUnreadableError as error:
            assert isinstance(error, InputError) and str(error)
            failures += 1
    assert failures >= len(cases[:9]) - 1  # the truncated ones (all but perhaps the last)


@pytest.mark.parametrize("blob", [b"", b"B", b"A\x05\x00\x00\x00", b"A\xff\xff\xff\x7friscv",
                                  b"A\x10\x00\x00\x00riscv\x00\x01\x09\x00\x00\x00\x05abc"])
def test_malformed_attribute_sections(blob: bytes) -> None:
    with pytest.raises(ElfUnreadableError):
        parse_attributes(blob)


def _reference() -> Callable[[bytes], tuple[ElfInfo, ElfSymbols]]:
    spec = importlib.util.spec_from_file_location(
        "elf_reference", Path(__file__).with_name("elf_reference.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference


def assert_agrees_with_pyelftools(data: bytes, name: str) -> None:
    """The fast reader's facts equal pyelftools' (via the reference reader)."""
    info, symbols = _reference()(data)
    assert read_elf(data) == info, name
    assert read_symbols(data) == symbols, name


def test_agrees_with_pyelftools_on_every_alpine_elf(alpine_tarball: Path) -> None:
    checked = 0
    with tarfile.open(alpine_tarball) as tar:
        for member in tar:
            if not member.isfile():
                continue
            data = (tar.extractfile(member) or io.BytesIO()).read()
            if data[:4] == b"\x7fELF":
                assert_agrees_with_pyelftools(data, member.name)
                checked += 1
    assert checked > 10


def test_agrees_with_pyelftools_on_compiled_fixtures(riscv_cc: RiscvCC, tmp_path: Path) -> None:
    script = tmp_path / "vers.map"
    script.write_text("VERS_1.0 { global: f; local: *; };\nVERS_2.0 { global: g; } VERS_1.0;\n")
    objects = [
        riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv"),
        riscv_cc.program("hello", "hello-static", "-O2", "-static"),
        riscv_cc.program("hello", "hello-zb", "-O2", "-march=rv64gc_zba_zbb"),
        riscv_cc(START_LP64, "lp64", "-O2", "-static", "-nostdlib", "-march=rv64imac",
                 "-mabi=lp64"),
        riscv_cc(AUXV, "auxv", "-O2"),
        riscv_cc.program("hello", "rpath", "-Wl,-rpath,/opt/a:/opt/b", "-Wl,--disable-new-dtags"),
        riscv_cc("int f(void){return 1;}\nint g(void){return 2;}\n", "libv.so", "-shared",
                 "-fPIC", f"-Wl,--version-script={script}", "-Wl,-soname,libv.so.1"),
        riscv_cc(UNKNOWN_TAGS, "unknown-tags", "-c", suffix=".s"),
        Path("/bin/true"),
    ]
    for path in objects:
        assert_agrees_with_pyelftools(path.read_bytes(), path.name)
    stripped = bytearray(objects[0].read_bytes())
    stripped[0x28:0x30] = bytes(8)  # no section headers: PT_DYNAMIC, PT_RISCV_ATTRIBUTES
    stripped[0x3C:0x40] = bytes(4)
    assert_agrees_with_pyelftools(bytes(stripped), "stripped")


def test_reads_a_file_stream_like_bytes(riscv_cc: RiscvCC) -> None:
    path = riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv")
    with open(path, "rb") as stream:  # a real file: pread
        from_file = read_elf(stream), read_symbols(stream)
    memory = io.BytesIO(path.read_bytes())  # no file descriptor: seek and read
    assert from_file == (read_elf(memory), read_symbols(memory))
    assert from_file == (read_elf(path.read_bytes()), read_symbols(path.read_bytes()))


def test_symbol_tables_of_corrupt_input_never_raise_anything_else(riscv_cc: RiscvCC) -> None:
    data = riscv_cc(AUXV, "auxv", "-O2").read_bytes()
    rng = random.Random(5)
    failures = 0
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 30)):  # hit the section headers and tables
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            read_symbols(bytes(mutated))
            read_elf(bytes(mutated))
        except ElfUnreadableError as error:
            assert str(error)
            failures += 1
    assert 0 < failures < 300


def test_hostile_counts_and_offsets_are_bounded(riscv_cc: RiscvCC) -> None:
    data = bytearray(riscv_cc.program("hello", "hello", "-O2").read_bytes())
    huge = bytearray(data)
    huge[0x3C:0x3E] = (0xFFFF).to_bytes(2, "little")  # e_shnum: far more than fit
    with pytest.raises(ElfUnreadableError, match="section header"):
        read_elf(bytes(huge))
    wrong = bytearray(data)
    wrong[0x36:0x38] = (40).to_bytes(2, "little")  # e_phentsize of ELF32 in an ELF64
    with pytest.raises(ElfUnreadableError, match="program header entries"):
        read_elf(bytes(wrong))
