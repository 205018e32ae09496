"""ISA strings, the binutils implication closure, profiles and the requirement check."""

from __future__ import annotations

import subprocess

import pytest
from fixture_types import RiscvCC

from rvforge.errors import UsageError
from rvforge.riscv.isa import (
    IMPLICATIONS,
    PROFILES,
    IsaParseError,
    missing,
    parse_isa,
    parse_target,
    top_level,
)

DEBIAN_BASELINE = ("rv64i2p1_m2p0_a2p1_f2p2_d2p2_c2p0_zicsr2p0_zifencei2p0_zmmul1p0_"
                   "zaamo1p0_zalrsc1p0")
QEMU_RV64 = "rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc"


@pytest.mark.parametrize(("text", "canonical"), [
    ("rv64gc", "rv64imafdc_zicsr_zifencei"),
    ("RV64GCV", "rv64imafdcv_zicsr_zifencei"),
    ("rv64imafdc_zbb_zba", "rv64imafdc_zba_zbb"),
    ("rv64i2p1_m2p0_a2p1_f2p2_d2p2_c2p0_v1p0_zicsr2p0_zve64d1p0_zvl128b1p0",
     "rv64imafdcv_zicsr_zve64d_zvl128b"),
    (QEMU_RV64, QEMU_RV64),
    ("rv64gc_xtheadba_sstc_zicbom", "rv64imafdc_zicbom_zicsr_zifencei_sstc_xtheadba"),
    ("rv32ec", "rv32ec"),
])
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_isa(text)) == canonical


def test_versions_are_kept() -> None:
    isa = parse_isa("rv64i2p1_m2p0_zvl128b1p0")
    assert [(e.name, e.major, e.minor) for e in isa.extensions] == [
        ("i", 2, 1), ("m", 2, 0), ("zvl128b", 1, 0)]
    assert isa.versioned() == "rv64i2p1_m2p0_zvl128b1p0"


def test_g_expands_to_what_gcc_writes() -> None:
    assert parse_isa("rv64g").names == {"i", "m", "a", "f", "d", "zicsr", "zifencei"}


@pytest.mark.parametrize(("ext", "implied"), [
    ("v", {"zve64d", "zve64f", "zve64x", "zve32f", "zve32x", "zvl128b", "zvl64b", "zvl32b",
           "d", "f", "zicsr"}),
    ("zvl1024b", {"zvl512b", "zvl256b", "zvl128b", "zvl64b", "zvl32b"}),
    ("b", {"zba", "zbb", "zbs"}),
    ("m", {"zmmul"}),
    ("a", {"zaamo", "zalrsc"}),
    ("zfh", {"zfhmin", "f", "zicsr"}),
    ("zk", {"zkn", "zkr", "zkt", "zbkb", "zbkc", "zbkx", "zkne", "zknd", "zknh"}),
    # binutils 2.44: vector crypto names no vector base (as -march=rv64i_zvknc takes it)
    ("zvknc", {"zvkn", "zvbc", "zvkned", "zvknhb", "zvkb", "zvkt"}),
    ("zcmt", {"zca", "zicsr"}),
    ("shvstvala", {"h", "zicsr"}),
    ("smcsrind", {"sscsrind", "zicsr"}),
    ("zfbfmin", {"zfhmin", "f", "zicsr"}),
    ("zvfbfwma", {"zfbfmin", "zfhmin", "zve32f", "zve32x", "zvl32b", "f"}),
])
def test_implications(ext: str, implied: set[str]) -> None:
    closure = parse_isa(f"rv64i2p1_{ext}").closure()
    assert implied <= closure, implied - closure


def test_e_implies_nothing_and_an_rve_cpu_lacks_i() -> None:
    assert parse_isa("rv64e2p0").closure() == {"e"}
    assert missing(parse_isa("rv64i2p1_m2p0"), parse_target("rv64emac")) == ["i"]
    assert missing(parse_isa("rv64e2p0_m2p0_c2p0"), parse_target("rv64gc")) == []


def test_c_is_zca_and_zcd_with_d() -> None:
    assert {"zca", "zcd"} <= parse_target("rv64gc").closure()
    assert "zcd" not in parse_target("rv64imac").closure()
    assert "zcf" in parse_target("rv32imafc").closure()
    # a CPU with C's parts runs C code; an object needing Zca alone does not need C
    assert missing(parse_isa("rv64i2p1_c2p0"), parse_target("rv64imafd_zca_zcd")) == []
    assert missing(parse_isa("rv64i2p1_c2p0"), parse_target("rv64imafd_zca")) == ["c"]
    assert missing(parse_isa("rv64i2p1_d2p2_zca1p0"), parse_target("rv64imafd_zca")) == []


def test_i_below_2p1_implies_zicsr_and_zifencei() -> None:
    assert {"zicsr", "zifencei"} <= parse_isa("rv64i2p0").closure()
    assert "zifencei" not in parse_isa("rv64i2p1").closure()
    # a CPU string without versions (as people and QEMU write it) has them too
    assert {"zicsr", "zifencei"} <= parse_target("rv64imafdc").closure()


def test_implication_table_is_closed_over_known_names() -> None:
    for source, targets in IMPLICATIONS.items():
        for target in targets:
            assert target.isalnum() and target.islower(), (source, target)


def test_vector_binary_on_scalar_cpu() -> None:
    lacking = missing(parse_isa("rv64gcv"), parse_target("rv64gc"))
    assert lacking[0] == "v" and "zve64d" in lacking and "zvl128b" in lacking
    assert top_level(lacking) == ["v"]


def test_vlen_requirement() -> None:
    assert missing(parse_isa("rv64gcv_zvl256b"), parse_target("rv64gcv")) == ["zvl256b"]
    assert missing(parse_isa("rv64gcv_zvl128b"), parse_target("rv64gcv_zvl512b")) == []


def test_debian_baseline_runs_on_qemu_and_profiles() -> None:
    binary = parse_isa(DEBIAN_BASELINE)
    for target in (QEMU_RV64, "rv64gc", "rva20u64", "rva22u64", "rva23u64", "rva23s64"):
        assert missing(binary, parse_target(target)) == [], target


def test_u_mode_profile_targets_include_zifencei() -> None:
    """Ordinary rv64gc binaries name zifencei; a U-mode profile target must accept them."""
    for name in ("rva20u64", "rva22u64", "rva23u64"):
        assert "zifencei" in parse_target(name).closure()
        assert missing(parse_isa("rv64gc"), parse_target(name)) == []


def test_profiles_grow() -> None:
    rva20, rva22, rva23 = (parse_target(f"rva{n}u64").closure() for n in (20, 22, 23))
    assert rva20 - {"za128rs"} < rva23 and {"zba", "zbb", "zbs", "zicboz"} <= rva22
    assert "v" not in rva22 and {"v", "zvl128b", "zvbb", "zicond"} <= rva23
    assert parse_target("rva23s64").closure() > rva23
    assert missing(parse_isa("rv64gcv"), parse_target("rva22u64"))[0] == "v"
    assert set(PROFILES) == {f"rva{n}{m}64" for n in (20, 22, 23) for m in "us"}


def test_profile_string_round_trips() -> None:
    text = str(parse_target("rva23u64"))
    assert text.startswith("rv64imafdcv_")
    assert parse_target(text).closure() == parse_target("rva23u64").closure()


@pytest.mark.parametrize("text", ["x86_64", "rv64", "rv64xyz", "rv63gc", "rv64gc_z", "",
                                  "rv64g!c", "rva99u64"])
def test_unparsable_names_the_text(text: str) -> None:
    with pytest.raises(IsaParseError) as info:
        parse_target(text)
    assert isinstance(info.value, UsageError)
    assert repr(text) in str(info.value)


def test_gcc_accepts_our_canonical_strings(riscv_cc: RiscvCC) -> None:
    """The canonical form is a valid -march for the toolchain."""
    for text in ("rv64gc", "rv64gcv", "rv64imafdc_zba_zbb"):
        march = str(parse_isa(text))
        riscv_cc("int f(void){return 0;}", f"march-{text}", "-c", f"-march={march}")


def test_gcc_attribute_parses_back(riscv_cc: RiscvCC) -> None:
    obj = riscv_cc("int f(void){return 0;}", "attr-gcv", "-c", "-march=rv64gcv_zba")
    out = subprocess.run(["riscv64-linux-gnu-readelf", "-A", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    arch = out.split('Tag_RISCV_arch: "')[1].split('"')[0]
    assert {"v", "zba", "zvl128b"} <= parse_isa(arch).names
    assert missing(parse_isa(arch), parse_target("rv64gcv_zba")) == []


@pytest.mark.parametrize("text", ["rv64i\u0663p0", "rv64i\u00b2", "rv64i" + "9" * 5000,
                                  "rv64imac_zba\uff11p0"])
def test_extension_versions_are_ascii_digits_and_bounded(text: str) -> None:
    """``\\d`` and ``int()`` take other scripts' digits (Arabic-Indic 3 was version 3) and a
    5000-digit version overflowed int()'s limit: both are a parse error naming the text."""
    with pytest.raises(IsaParseError) as info:
        parse_isa(text)
    assert "cannot read" in str(info.value)
