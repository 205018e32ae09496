"""Packing benchmark: rvforge against ``find . | cpio -o -H newc | gzip -9`` and
``... | zstd -T0`` on a ~1 GB tree, in the same run.

The tree is the real Alpine riscv64 minirootfs plus ``/opt/payload/blob-NN.bin`` files of
~64 MB, each a concatenation of real ELF executables and shared libraries from this host's
``/usr/lib`` and ``/usr/bin`` (what a large payload such as a PyTorch install is made of:
compressible like real binaries, unlike random bytes or zeros). Every command reads the
same directory with a warm page cache. rvforge runs as the real command
(``rvforge build --provider local --source DIR --no-audit --no-init -o OUT``), so its time
includes reading the directory into a tree; its peak RSS is the child's ``ru_maxrss``.

Usage: ``uv run python benchmarks/pack.py [--size-mb 1024] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALPINE = ROOT / "tests/data/alpine/alpine-minirootfs-3.20.3-riscv64.tar.gz"
ELF_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/gcc", "/usr/bin", "/usr/lib")
BLOB = 64 << 20


@dataclass
class Result:
    name: str
    seconds: float
    size: int
    peak_rss_kb: int | None = None


def build_tree(directory: Path, size_mb: int) -> int:
    """Unpack Alpine into ``directory`` and add ELF payload blobs; return total bytes."""
    with tarfile.open(ALPINE) as archive:
        archive.extractall(directory, filter="fully_trusted")
    payload = directory / "opt" / "payload"
    payload.mkdir(parents=True)
    target = size_mb << 20
    total = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()
                and not p.is_symlink())
    elfs = iter(sorted(_elf_files()))
    index = 0
    while total < target:
        blob = payload / f"blob-{index:02d}.bin"
        with open(blob, "wb") as out:
            want = min(BLOB, target - total)
            while out.tell() < want:
                source = next(elfs, None)
                if source is None:
                    raise SystemExit("not enough ELF files on this host for the payload")
                with open(source, "rb") as stream:  # the last one cut to fit the blob
                    out.write(stream.read(want - out.tell()))
            total += out.tell()
        index += 1
    return total


def _elf_files() -> set[str]:
    found: set[str] = set()
    for top in ELF_DIRS:
        for dirpath, _, names in os.walk(top):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path) or os.path.getsize(path) < 16384:
                        continue
                    with open(path, "rb") as stream:
                        if stream.read(4) == b"\x7fELF":
                            found.add(os.path.realpath(path))
                except OSError:
                    continue
    return found


def warm(directory: Path) -> None:
    subprocess.run("find . -type f -exec cat {} + > /dev/null", shell=True,
                   cwd=directory, check=True)


def run_shell(name: str, pipeline: str, directory: Path, output: Path) -> Result:
    start = time.monotonic()
    subprocess.run(f"set -o pipefail; {pipeline} > {output}", shell=True, cwd=directory,
                   check=True, executable="/bin/bash", stderr=subprocess.DEVNULL)
    return Result(name, time.monotonic() - start, output.stat().st_size)


def run_rvforge(name: str, directory: Path, output: Path) -> Result:
    """The real ``rvforge build``, in a wrapper process that reports the peak RSS of
    exactly that one child."""
    rvforge = Path(sys.executable).with_name("rvforge")
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    command = [sys.executable, "-c", wrapper, str(rvforge), "build", "--provider", "local",
               "--source", str(directory), "--no-audit", "--no-init", "-o", str(output)]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.monotonic() - start
    return Result(name, seconds, output.stat().st_size, int(done.stdout.split()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="rvforge-bench-"))
    tree, out = work / "tree", work / "out"
    try:
        if not tree.exists():
            tree.mkdir(parents=True)
            total = build_tree(tree, args.size_mb)
        else:
            total = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        out.mkdir(exist_ok=True)
        warm(tree)
        print(f"tree: {total / 2**20:.0f} MiB of files, {os.cpu_count()} cores", flush=True)
        results = [
            run_shell("find | cpio | gzip -9", "find . | cpio -o -H newc --quiet | gzip -9",
                      tree, out / "gnu.cpio.gz"),
            run_shell("find | cpio | zstd -T0", "find . | cpio -o -H newc --quiet | zstd -T0 -q",
                      tree, out / "gnu.cpio.zst"),
            run_rvforge("rvforge .cpio.gz", tree, out / "rvforge.formats.cpio.gz"),
            run_rvforge("rvforge .cpio.zst", tree, out / "rvforge.formats.cpio.zst"),
        ]
        gzip9, zstd = results[0], results[1]
        print(f"{'command':<24}{'seconds':>9}{'output MiB':>12}{'peak RSS MiB':>14}")
        for r in results:
            rss = f"{r.peak_rss_kb / 1024:.0f}" if r.peak_rss_kb else "-"
            print(f"{r.name:<24}{r.seconds:>9.1f}{r.size / 2**20:>12.1f}{rss:>14}")
        gz, zst = results[2], results[3]
        print(f"rvforge .cpio.gz : {gzip9.seconds / gz.seconds:.1f}x faster than gzip -9 "
              f"pipeline, output {100 * (gz.size / gzip9.size - 1):+.2f}% "
              f"(goal: >= 4x, <= +1%)")
        print(f"rvforge .cpio.zst: {gzip9.seconds / zst.seconds:.1f}x faster than gzip -9 "
              f"pipeline (goal: >= 10x); {zstd.seconds / zst.seconds:.2f}x the speed of the "
              f"zstd -T0 pipeline, output {100 * (zst.size / zstd.size - 1):+.2f}%")
        peak = max(r.peak_rss_kb or 0 for r in results) / 1024
        print(f"rvforge peak RSS: {peak:.0f} MiB (goal: < 150 MB)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
