"""Benchmark the audit against the tools people use today, in the same run.

1. Attribute audit (the ``isa`` auditor, no ``--deep``) of a Debian minbase-sized tree
   (~300 ELF files from trixie riscv64 packages) vs
   ``find DIR -type f -exec riscv64-linux-gnu-readelf -A {} +``, page cache warm: cold
   (an empty ELF facts cache), warm (a second audit of the same tree: the cache's tree row
   answers) and warm including reading the directory into a Tree (what ``rvforge audit
   DIR`` does), each the best of several runs, readelf too, in the same run.
2. The deep sweep of a large real library (``libtorch_cpu.so`` from Debian's riscv64
   ``libtorch2.6``, ~100 MB of code) vs ``riscv64-linux-gnu-objdump -d``.
3. Wheel audit throughput: real riscv64 wheels from PyPI (:data:`WHEELS`, fetched with
   ``python3 -m pip download`` into the rvforge cache once) read in memory and audited
   (``rvforge audit *.whl``, without and with ``--deep``) vs what one does today: ``unzip``
   each wheel to a temporary directory, then ``readelf -A`` (or ``objdump -d``) every ELF.

Packages are fetched through rvforge-debootstrap's verified archive into the rvforge cache
once. Run: ``uv run python benchmarks/audit.py`` (``--no-torch`` skips part 2's download,
``--only-wheels`` runs part 3 alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rvforge import pipeline
from rvforge.context import BuildContext
from rvforge.formats.directory import read_directory
from rvforge.machines import Machine
from rvforge.registry import build_registry
from rvforge.riscv import facts_cache as elf_cache
from rvforge.riscv.elf_files import elf_files
from rvforge.riscv.needs import sweep_file

MINBASE = (
    "base-files libc6 libgcc-s1 libstdc++6 bash coreutils dash diffutils findutils grep gzip "
    "hostname login ncurses-bin perl-base sed tar util-linux libacl1 libattr1 libselinux1 "
    "libpcre2-8-0 libzstd1 liblzma5 libbz2-1.0 zlib1g libcrypt1 libtinfo6 libsystemd0 libudev1 "
    "libcap2 libmd0 dpkg apt libapt-pkg7.0 libgnutls30t64 libssl3t64 libaudit1 libpam0g "
    "libpam-modules libpam-modules-bin mawk libsmartcols1 libblkid1 libmount1 libuuid1 gpgv "
    "libseccomp2 libxxhash0 libgmp10 libnettle8t64 libhogweed6t64 libidn2-0 libunistring5 "
    "libtasn1-6 libp11-kit0 libffi8 e2fsprogs libext2fs2t64 libcom-err2 libss2 passwd "
    "libsemanage2 libsepol2 libcap-ng0 bsdutils sysvinit-utils mount libdb5.3t64 debianutils "
    "libsqlite3-0 liblz4-1 libgcrypt20 libgpg-error0 libkmod2 procps libproc2-0"
).split()
TARGET = Machine("rv64gc", "", "rv64gc")
RUNS = 5
"""Runs of each warm measurement (and of readelf); the best counts."""
COLD_RUNS = 3


def best_of(runs: int, func) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def attribute_audit(ctx: BuildContext, root: Path) -> None:
    registry = ctx.registry
    from rvforge_debootstrap.archive import DebianArchive, extract_deb_to_dir

    archive = DebianArchive(ctx)
    names = [n for n in MINBASE if _known(archive, n)]
    debs = archive.download_many(names)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for path in debs.values():
        extract_deb_to_dir(path, root)

    time.sleep(elf_cache.RACY_SECONDS)  # files younger than this are (rightly) not cached
    tree = read_directory(root, owners="root")
    copies = iter([tree.copy() for _ in range(COLD_RUNS + RUNS)])

    def cold() -> int:  # a fresh facts cache: every ELF header is read
        fresh = Path(tempfile.mkdtemp(dir=ctx.scratch()))
        with BuildContext(registry, cache_dir=fresh) as c:
            return len(pipeline.audit(registry, next(copies), TARGET, c, ["isa"]).files)

    def warm() -> None:  # the same tree audited again (a new Tree: no in-process memo)
        pipeline.audit(registry, next(copies), TARGET, ctx, ["isa"])

    def warm_from_directory() -> None:  # `rvforge audit DIR`: directory → Tree → audit
        pipeline.audit(registry, read_directory(root, owners="root"), TARGET, ctx, ["isa"])

    def read_tree() -> None:
        read_directory(root, owners="root")

    def readelf() -> None:
        subprocess.run(f"find {root} -type f -exec riscv64-linux-gnu-readelf -A {{}} +",
                       shell=True, check=False, capture_output=True)

    readelf()  # warms the page cache
    pipeline.audit(registry, tree, TARGET, ctx, ["isa"])  # fills the facts cache
    load_before = os.getloadavg()[0]
    t_cold = best_of(COLD_RUNS, cold)
    t_warm, t_dir = best_of(RUNS, warm), best_of(RUNS, warm_from_directory)
    t_tree = best_of(RUNS, read_tree)
    t_readelf = best_of(RUNS, readelf)
    count = len(elf_files(tree))
    print(f"## attribute audit: {len(debs)} packages, {count} ELF files, "
          f"{sum(1 for e in tree.walk() if e.content is not None)} files; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"best of {RUNS} (cold: {COLD_RUNS})")
    print(f"rvforge isa auditor, cold (no facts cache): {t_cold:.3f} s")
    print(f"rvforge isa auditor, warm (second audit):   {t_warm:.3f} s")
    print(f"read_directory (DIR -> Tree) alone:         {t_tree:.3f} s")
    print(f"warm, directory -> Tree -> audit:           {t_dir:.3f} s")
    print(f"find -exec readelf -A:                      {t_readelf:.3f} s")
    print(f"speed-up vs readelf: cold {t_readelf / t_cold:.1f}x, warm {t_readelf / t_warm:.1f}x,"
          f" warm from the directory {t_readelf / t_dir:.1f}x")


def deep_sweep(ctx: BuildContext, package: str, member: str, objdump: bool) -> None:
    from rvforge_debootstrap.archive import DebianArchive, extract_deb_to_dir

    archive = DebianArchive(ctx)
    deb = archive.download(package)
    dest = ctx.scratch("deep", package)
    extract_deb_to_dir(deb, dest)
    library = next(p for p in dest.rglob(member) if not p.is_symlink())
    tree = read_directory(library.parent, owners="root")
    elf = elf_files(tree, ctx)[f"/{library.name}"]
    assert elf.info is not None
    code = sum(c.size for c in elf.info.code)
    result = None

    def ours() -> None:
        nonlocal result
        result = sweep_file(elf)

    t_ours = best_of(3, ours)
    print(f"## deep sweep: {library.name} from {package}: {code / 1e6:.1f} MB of code")
    print(f"rvforge sweep: {t_ours:.2f} s = {code / 1e6 / t_ours:.0f} MB/s; "
          f"{result.total} instructions, {dict(result.instructions)}")
    if objdump:
        start = time.perf_counter()
        subprocess.run(["riscv64-linux-gnu-objdump", "-d", str(library)], check=True,
                       stdout=subprocess.DEVNULL)
        t_objdump = time.perf_counter() - start
        print(f"objdump -d:    {t_objdump:.1f} s = {code / 1e6 / t_objdump:.1f} MB/s")
        print(f"speed-up: {t_objdump / t_ours:.0f}x")


WHEELS = ("markupsafe==3.0.4", "msgpack==1.2.4", "charset-normalizer==3.5.3",
          "rpds-py==2026.9.1", "pydantic-core==2.50.5")
"""Real riscv64 wheels on PyPI (CPython 3.11, manylinux_2_31_riscv64), 20 KB to 2.3 MB."""
PIP_TARGET = ("--platform", "manylinux_2_31_riscv64", "--python-version", "3.11",
              "--implementation", "cp", "--abi", "cp311")


def fetch_wheels(ctx: BuildContext) -> list[Path]:
    cache = ctx.cache("pypi-wheels")
    found = []
    for requirement in WHEELS:
        name, version = requirement.split("==")
        pattern = f"{name.replace('-', '_')}-{version}-*.whl"
        if not list(cache.glob(pattern)):
            with tempfile.TemporaryDirectory(dir=cache) as work:
                subprocess.run(["python3", "-m", "pip", "download", "--quiet", "--no-deps",
                                "--only-binary=:all:", *PIP_TARGET, requirement, "-d", work],
                               check=True)
                for wheel in Path(work).glob("*.whl"):
                    os.replace(wheel, cache / wheel.name)
        found += sorted(cache.glob(pattern))[:1]
    return found


def wheel_audit(ctx: BuildContext, objdump: bool) -> None:
    from rvforge.loading import load_input

    registry = ctx.registry
    wheels = fetch_wheels(ctx)
    size = sum(w.stat().st_size for w in wheels)
    target = Machine("manylinux_2_31_riscv64", "", "rva20u64")
    deep_ctx = dataclasses.replace(ctx, deep=True)
    audited = {"files": 0, "code": 0}

    def ours(run_ctx: BuildContext) -> None:
        audited["files"] = audited["code"] = 0
        for wheel in wheels:
            package = load_input(wheel, run_ctx)
            report = pipeline.audit(registry, package.tree, target, run_ctx, ["isa"])
            assert not report.errors, report.errors
            audited["files"] += len(report.files)
            audited["code"] += sum(c.size for e in elf_files(package.tree, run_ctx).values()
                                   if e.info for c in e.info.code)

    def unzip_then(tool: list[str]) -> None:
        for wheel in wheels:
            with tempfile.TemporaryDirectory(dir=ctx.scratch()) as work:
                subprocess.run(["unzip", "-q", "-o", str(wheel), "-d", work], check=True)
                subprocess.run(f"find {work} -name '*.so*' -type f -exec {' '.join(tool)} {{}} +",
                               shell=True, check=True, stdout=subprocess.DEVNULL)

    def cli(*flags: str) -> None:
        subprocess.run([sys.executable, "-m", "rvforge", "--quiet", "audit", *flags,
                        *map(str, wheels)], check=True, stdout=subprocess.DEVNULL)

    ours(ctx)  # warms the page cache and fills the facts cache with the wheels' ELFs
    load_before = os.getloadavg()[0]
    t_ours = best_of(RUNS, lambda: ours(ctx))
    t_deep = best_of(3, lambda: ours(deep_ctx))
    t_cli = best_of(3, cli)
    t_cli_deep = best_of(3, lambda: cli("--deep"))
    t_readelf = best_of(RUNS, lambda: unzip_then(["riscv64-linux-gnu-readelf", "-A"]))
    mb = size / 1e6
    print(f"## wheel audit: {len(wheels)} wheels, {mb:.1f} MB, {audited['files']} ELF files, "
          f"{audited['code'] / 1e6:.1f} MB of code; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; best of {RUNS} (deep and CLI: 3)")
    print(f"rvforge, in process (read in memory + isa):  {t_ours:.3f} s = {mb / t_ours:.0f} "
          f"MB/s of wheels, {len(wheels) / t_ours:.0f} wheels/s")
    print(f"rvforge --deep, in process:                   {t_deep:.3f} s = {mb / t_deep:.0f} "
          "MB/s")
    print(f"rvforge audit *.whl (CLI, startup included):  {t_cli:.3f} s; --deep {t_cli_deep:.3f} s")
    print(f"unzip + readelf -A:                          {t_readelf:.3f} s = "
          f"{mb / t_readelf:.0f} MB/s; rvforge {t_readelf / t_ours:.1f}x in process, "
          f"{t_readelf / t_cli:.1f}x as a command")
    if objdump:
        t_objdump = best_of(1, lambda: unzip_then(["riscv64-linux-gnu-objdump", "-d"]))
        print(f"unzip + objdump -d:                          {t_objdump:.3f} s; rvforge "
              f"--deep {t_objdump / t_deep:.0f}x in process, {t_objdump / t_cli_deep:.0f}x "
              "as a command")


def _known(archive, name: str) -> bool:
    try:
        archive.package(name)
        return True
    except Exception:
        print(f"(skipping {name}: not in the index)", file=sys.stderr)
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-torch", action="store_true",
                        help="sweep libopenblas instead of downloading libtorch (49 MB)")
    parser.add_argument("--no-objdump", action="store_true", help="skip the objdump run")
    parser.add_argument("--only-wheels", action="store_true", help="run part 3 alone")
    args = parser.parse_args()
    with BuildContext(build_registry()) as ctx:
        wheel_audit(ctx, not args.no_objdump)
        if args.only_wheels:
            return
        attribute_audit(ctx, ctx.cache("benchmarks", "minbase"))
        if args.no_torch:
            deep_sweep(ctx, "libopenblas0-pthread", "libopenblasp-r*.so", not args.no_objdump)
        else:
            deep_sweep(ctx, "libtorch2.6", "libtorch_cpu.so*", not args.no_objdump)


if __name__ == "__main__":
    main()
