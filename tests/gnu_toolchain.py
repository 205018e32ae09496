"""GNU binutils 2.44 for riscv64, the oracle for what an extension implies.

Debian trixie's native riscv64 ``binutils-riscv64-linux-gnu`` and the libraries it needs,
fetched from the host's Debian mirror (verified, cached like every other Debian fixture)
and unpacked into a sysroot once; its ``as`` and ``readelf`` run under
``qemu-riscv64 -L SYSROOT``. The host's own binutils (2.40) rejects most extensions newer
than 2023 (zicond, zfa, zc*, vector crypto...), which is why this one is used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rvforge.context import BuildContext
from rvforge.riscv.isa import parse_isa, sort_key

VERSION = "2.44"
PACKAGES = ("binutils-riscv64-linux-gnu", "binutils-common", "libbinutils", "libc6",
            "libgcc-s1", "libctf-nobfd0", "libctf0", "libjansson4", "libsframe1",
            "libzstd1", "zlib1g")
"""The binutils package and its Depends (trixie, riscv64)."""
TRIPLET = "riscv64-linux-gnu"


@dataclass(frozen=True)
class Toolchain:
    """``as``/``readelf`` of the sysroot, run under qemu-riscv64."""

    sysroot: Path

    def run(self, tool: str, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        exe = self.sysroot / "usr" / "bin" / f"{TRIPLET}-{tool}"
        return subprocess.run(["qemu-riscv64", "-L", str(self.sysroot), str(exe), *args],
                              input=stdin, capture_output=True, text=True, timeout=120)

    def assemble(self, source: str, out: Path, *flags: str) -> Path:
        """Assemble ``source`` into the object ``out``; fails the test on errors."""
        result = self.run("as", *flags, "-o", str(out), "-", stdin=source)
        assert result.returncode == 0, f"as {' '.join(flags)} failed:\n{result.stderr}"
        return out

    def arch_attribute(self, path: Path) -> str:
        """``Tag_RISCV_arch`` as ``readelf -A`` prints it."""
        result = self.run("readelf", "-A", str(path))
        assert result.returncode == 0, result.stderr
        for line in result.stdout.splitlines():
            if "Tag_RISCV_arch:" in line:
                return line.split(":", 1)[1].strip().strip('"')
        raise AssertionError(f"no Tag_RISCV_arch in {path}:\n{result.stdout}")


def toolchain(ctx: BuildContext) -> Toolchain:
    """The binutils 2.44 sysroot under ``ctx``'s cache (built once, renamed into place)."""
    from rvforge_debootstrap.archive import DebianArchive
    from rvforge_debootstrap.deb import extract_deb_to_dir

    if shutil.which("qemu-riscv64") is None:
        raise AssertionError("qemu-riscv64 is missing: apt-get install qemu-user")
    dest = ctx.cache("riscv-binutils") / VERSION
    if (dest / "usr" / "bin" / f"{TRIPLET}-as").exists():
        return Toolchain(dest)
    debs = DebianArchive(ctx).download_many(PACKAGES)
    temp = Path(tempfile.mkdtemp(prefix=".sysroot-", dir=dest.parent))
    try:
        for name in PACKAGES:
            extract_deb_to_dir(debs[name], temp)
        for link in ("lib", "bin", "lib64"):  # trixie is merged-/usr
            if not (temp / link).exists():
                os.symlink(f"usr/{link}", temp / link)
        try:
            os.rename(temp, dest)
        except OSError:  # another run built it meanwhile
            if not dest.exists():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return Toolchain(dest)


# -- the implication closure, as the toolchain computes it ------------------------------

_STRING = re.compile(rb"[a-z0-9+,]{2,40}(?=\0)")
_NAME = re.compile(r"[zsx][a-z](?:[a-z0-9]*[a-z])?")
_SINGLE = "mafdqcbvhe"
_MAPPING = re.compile(r"\s\$x(rv\d+\S+)$")
_LABEL = re.compile(r"^\s*\d+: ([0-9a-f]+) .* (ext\d+)$")
_ERROR_LINE = re.compile(r":(\d+): Error: ")


def candidate_extensions(chain: Toolchain) -> list[str]:
    """The single letters and every extension-like name in libbfd's string table (its
    ``riscv_supported_*`` and ``riscv_implicit_subsets`` tables). The linker merges a
    string into the tail of a longer one (``zca`` into ``+f,+zca``), so every suffix
    counts; names the assembler does not take are dropped by :func:`closures`."""
    lib = chain.sysroot / "usr" / "lib" / TRIPLET / f"libbfd-{VERSION}-system.so"
    names: set[str] = set()
    for raw in _STRING.findall(lib.read_bytes()):
        for part in raw.decode().split(","):
            word = part.lstrip("+")
            names.update(word[i:] for i in range(len(word)) if _NAME.fullmatch(word[i:]))
    return [*_SINGLE, *sorted(names)]


def closures(chain: Toolchain, names: list[str], workdir: Path) -> dict[str, frozenset[str]]:
    """Extension → every extension the assembler's ISA string names once it is enabled on
    an ``rv64i`` (``rv32i`` for RV32-only ones) base, itself and the base left out.

    One assembly per XLEN: ``.option arch, rv64i_X`` before a label and a ``nop`` per
    extension; the ``$x<isa>`` mapping symbol in force at each label is the toolchain's
    ISA string for that extension (the string it writes into ``Tag_RISCV_arch``).
    """
    result: dict[str, frozenset[str]] = {}
    todo = list(names)
    for xlen in (64, 32):
        found, rejected = _closures_on(chain, xlen, todo, workdir)
        result.update(found)
        todo = [n for n in rejected if "does not support" in rejected[n]]
    # zvl*b must come with a vector extension: measure each with zve32x, minus its closure
    vector = [n for n in names if n.startswith("zvl") and n not in result]
    with_base, _ = _closures_on(chain, 64, vector, workdir, helper="zve32x")
    # (zve32x brings zvl32b, which every zvl*b implies anyway: keep that link)
    base = (result["zve32x"] | {"zve32x"}) - {"zvl32b"}
    result.update({n: implied - base for n, implied in with_base.items()})
    return result


def _closures_on(chain: Toolchain, xlen: int, names: list[str], workdir: Path,
                 helper: str = "") -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    rejected: dict[str, str] = {}
    source = workdir / f"closure{xlen}.s"
    obj = workdir / f"closure{xlen}.o"
    while True:
        taken = [n for n in names if n not in rejected]
        lines = []
        for index, name in enumerate(taken):
            arch = f"rv{xlen}e" if name == "e" else \
                f"rv{xlen}i{name}" if len(name) == 1 else f"rv{xlen}i_{name}"
            arch += f"_{helper}" if helper else ""
            lines += [f".option arch, {arch}", f"ext{index}:", "nop"]
        source.write_text("\n".join(lines) + "\n")
        result = chain.run("as", "-misa-spec=20191213", f"-march=rv{xlen}i", "-o", str(obj),
                           str(source))
        if result.returncode == 0:
            break
        errors = {int(m.group(1)): line for line in result.stderr.splitlines()
                  if (m := _ERROR_LINE.search(line))}
        assert errors, result.stderr
        for line_no, message in errors.items():
            rejected[taken[(line_no - 1) // 3]] = message
    symbols = chain.run("readelf", "-sW", str(obj))
    assert symbols.returncode == 0, symbols.stderr
    mapping: list[tuple[int, str]] = []
    labels: dict[str, int] = {}
    for line in symbols.stdout.splitlines():
        if (m := _MAPPING.search(line)):
            mapping.append((int(line.split()[1], 16), m.group(1)))
        elif (m := _LABEL.match(line)):
            labels[m.group(2)] = int(m.group(1), 16)
    mapping.sort()
    found = {}
    for index, name in enumerate(taken):
        address = labels[f"ext{index}"]
        arch = [isa for at, isa in mapping if at <= address][-1]
        named = {e.name for e in parse_isa(arch).extensions}
        found[name] = frozenset(named - {"i", name})
    return found, rejected


def reduced(table: dict[str, frozenset[str]]) -> dict[str, tuple[str, ...]]:
    """The transitive reduction of full closures: each extension's direct implications
    (those not implied by another of its implications), canonically ordered."""
    direct = {}
    for name, implied in table.items():
        indirect: set[str] = set()
        for other in implied:
            indirect |= table.get(other, frozenset())
        direct[name] = tuple(sorted(implied - indirect, key=sort_key))
    return {n: d for n, d in sorted(direct.items(), key=lambda kv: sort_key(kv[0])) if d}


def main() -> None:
    """Print the implication table for ``rvforge.riscv.isa.IMPLICATIONS``."""
    from rvforge.registry import build_registry

    with BuildContext(build_registry(load_entrypoints=False)) as ctx:
        chain = toolchain(ctx)
        with tempfile.TemporaryDirectory() as work:
            table = closures(chain, candidate_extensions(chain), Path(work))
    for name, implied in reduced(table).items():
        print(f"    {name!r}: {implied!r},")
    print(f"# {len(table)} extensions known to binutils {VERSION}")


if __name__ == "__main__":
    main()
