"""Machine profiles of real CPUs: boards people deploy to, and the RVA22U64 profile.

Each profile's ``isa`` is the CPU's own, copied from the cited ``source`` (a device tree
in Linux's tree, GCC's ``-mcpu`` table, the RISC-V profiles specification); the audit
checks images against it. ``cpu`` is the QEMU CPU that comes closest, for booting: the
extensions the board lacks are switched off so a binary that would trap there traps in
QEMU too. A CPU no QEMU model implements (T-Head's XTheadVector) makes an audit-only
profile (no launcher).
"""

from __future__ import annotations

from dataclasses import dataclass

from rvforge import Machine
from rvforge.riscv.isa import parse_target

LINUX_DTS = "Linux arch/riscv/boot/dts/"
GCC_CORES = "GCC gcc/config/riscv/riscv-cores.def"


@dataclass(frozen=True)
class Board:
    """One real CPU: its profile name, ISA, where the ISA comes from, the closest QEMU
    ``-cpu`` (``""``: none; audit only) and a one-line summary."""

    name: str
    isa: str
    source: str
    cpu: str
    summary: str


BOARDS = (
    Board("spacemit-k1",
          "rv64imafdcbv_zicbom_zicbop_zicboz_zicntr_zicond_zicsr_zifencei_zihintpause_"
          "zihpm_zfh_zba_zbb_zbc_zbs_zkt_zvfh_zvkt_sscofpmf_sstc_svinval_svnapot_svpbmt_"
          "zvl256b",
          f"{LINUX_DTS}spacemit/k1.dtsi (cpu@0 riscv,isa); VLEN 256 (zvl256b) from "
          f"{GCC_CORES} (spacemit-x60)",
          "rv64,v=true,vlen=256,elen=64,h=false,zicond=true,zicbom=true,zicbop=true,"
          "zicboz=true,zfh=true,zvfh=true,zkt=true,zvkt=true,sscofpmf=true,svinval=true,"
          "svnapot=true,svpbmt=true",
          "SpacemiT K1 (8x X60, Banana Pi BPI-F3, Milk-V Jupiter): RVV 1.0 at VLEN 256"),
    Board("starfive-jh7110",
          "rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb",
          f"{LINUX_DTS}starfive/jh7110.dtsi (U74 cores cpu@1-4, riscv,isa-extensions)",
          "rv64,h=false,zbc=false,zbs=false",
          "StarFive JH7110 (4x SiFive U74, VisionFive 2, Milk-V Mars): RV64GC with Zba/Zbb"),
    Board("sophgo-sg2042",
          "rv64imafdc_zicntr_zicsr_zifencei_zihpm_zfh_xtheadba_xtheadbb_xtheadbs_"
          "xtheadcmo_xtheadcondmov_xtheadfmemidx_xtheadmac_xtheadmemidx_xtheadmempair_"
          "xtheadsync_xtheadvector",
          f"{LINUX_DTS}sophgo/sg2042-cpus.dtsi (rv64imafdc, zicntr, zihpm); Zfh and the "
          f"T-Head extensions from {GCC_CORES} (xt-c920)",
          "",
          "Sophgo SG2042 (64x T-Head C920, Milk-V Pioneer): XTheadVector (RVV 0.7.1), not "
          "V 1.0; audit only: no QEMU CPU model implements XTheadVector"),
    Board("sifive-p550",
          "rv64imafdch_zicsr_zifencei_zba_zbb_sscofpmf",
          f"{LINUX_DTS}eswin/eic7700.dtsi (cpu@0 riscv,isa-extensions)",
          "rv64,zbc=false,zbs=false,sscofpmf=true",
          "SiFive P550 (ESWIN EIC7700X, HiFive Premier P550): RV64GC with H and Zba/Zbb"),
    Board("thead-c906",
          "rv64imafdc_zicntr_zicsr_zifencei_zihpm_zfh_xtheadba_xtheadbb_xtheadbs_"
          "xtheadcmo_xtheadcondmov_xtheadfmemidx_xtheadmac_xtheadmemidx_xtheadmempair_"
          "xtheadsync",
          f"{GCC_CORES} (thead-c906), and QEMU 10.0's thead-c906 model's device tree "
          "(which adds Zfh)",
          "thead-c906",
          "QEMU's T-Head C906 model (Allwinner D1): the T-Head scalar extensions; the real "
          "C906's XTheadVector is not emulated"),
    Board("rva22u64",
          str(parse_target("rva22u64")),
          "RISC-V Profiles specification (github.com/riscv/riscv-profiles, profiles.adoc): "
          "RVA22U64's mandatory extensions",
          "rva22s64",
          "the RVA22U64 profile (booted on QEMU's rva22s64 CPU)"),
)
"""The board profiles rvforge-qemu registers (``rvforge machines`` lists them)."""


def board_profiles(memory_mb: int) -> list[Machine]:
    """The :data:`BOARDS` as machine profiles: booted by ``qemu-virt`` on their closest
    QEMU CPU, or audit targets only where there is none."""
    return [Machine(name=b.name, launcher="qemu-virt" if b.cpu else "", isa=b.isa,
                    memory_mb=memory_mb, cpus=2, summary=b.summary,
                    options={"cpu": b.cpu} if b.cpu else {}, source=b.source)
            for b in BOARDS]
