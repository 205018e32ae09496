"""Debian trees benchmark: rvforge's ``debootstrap`` provider against ``debootstrap
--foreign --variant=minbase`` and ``mmdebstrap --variant=extract``, same run, same mirror.

Each row builds trixie riscv64 as an unpacked tree:

* ``rvforge minbase (cold)``: empty rvforge cache (index, ``.deb``s and unpacked store all
  fetched and built), ``--configure none``;
* ``rvforge minbase (warm)``: the same again with that cache;
* ``debootstrap --foreign --variant=minbase`` (its first stage: downloads and unpacks; it
  keeps no cache between runs, so each run is cold);
* ``mmdebstrap --variant=extract --include=<the Essential: yes packages>`` (unpacked, no
  configuration; without ``--include`` its extract installs nothing);
* ``rvforge essential/extract (warm)``, the set mmdebstrap's extract installs here.

rvforge runs in-process through the provider (what ``rvforge build`` calls), so those
times exclude interpreter start-up and packing; one more row runs the whole command,
``rvforge build --provider debootstrap --configure none --no-audit -o tree.tar``, on a
cold cache (start-up, build and writing an uncompressed tar included). The mirror is the
one the host's apt uses (or ``$RVFORGE_DEBIAN_MIRROR``). debootstrap and mmdebstrap need
root.

Usage: ``uv run python benchmarks/debian.py [--runs 3] [--configured]`` (``--configured``
adds fully configured minbase trees: rvforge ``--configure vm`` and ``--configure
binfmt`` against ``mmdebstrap --variant=minbase`` through the same binfmt handler; about
3 minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rvforge import BuildContext
from rvforge.options import build_options
from rvforge.registry import build_registry

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.mirror import choose_mirror
from rvforge_debootstrap.provider import DebootstrapOptions, DebootstrapProvider


def rvforge_tree(cache: Path, **values: object) -> Callable[[], int]:
    def run() -> int:
        options = build_options(DebootstrapOptions, values, owner="debootstrap")
        with BuildContext(build_registry(), cache_dir=cache) as ctx:
            tree = DebootstrapProvider().provide(options, ctx)
            return tree.stats().file_bytes
    return run


def essential_names(cache: Path) -> list[str]:
    """The ``Essential: yes`` packages: mmdebstrap's extract installs only what it is given."""
    with BuildContext(build_registry(), cache_dir=cache) as ctx:
        index = DebianArchive(ctx).index()
        return sorted(p.name for p in index.with_field("Essential", "yes", "Yes"))


def tool(argv: list[str], target: Path) -> Callable[[], int]:
    def run() -> int:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()  # mmdebstrap writes a tarball unless the target is a directory
        subprocess.run(argv, check=True, capture_output=True)
        size = sum(p.stat().st_size for p in target.rglob("*")
                   if p.is_file() and not p.is_symlink())
        shutil.rmtree(target, ignore_errors=True)
        return size
    return run


def rvforge_cli(cache: Path, output: Path) -> Callable[[], int]:
    def run() -> int:
        command = [str(Path(sys.executable).parent / "rvforge"), "--log-format", "json",
                   "build", "--provider", "debootstrap", "--configure", "none",
                   "--no-audit", "-o", str(output)]
        subprocess.run(command, check=True, capture_output=True,
                       env={**os.environ, "XDG_CACHE_HOME": str(cache)})
        size = output.stat().st_size
        output.unlink()
        return size
    return run


def timed(runs: int, action: Callable[[], int], before: Callable[[], None] | None = None
          ) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(runs):
        if before is not None:
            before()
        start = time.monotonic()
        size = action()
        times.append(time.monotonic() - start)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--configured", action="store_true",
                        help="also time fully configured minbase trees, once each: "
                        "--configure vm, --configure binfmt and mmdebstrap (the last two "
                        "need a registered qemu-riscv64 binfmt handler)")
    args = parser.parse_args()
    mirror = choose_mirror(None)
    work = Path(tempfile.mkdtemp(prefix="rvforge-bench-debian-"))
    cache = work / "cache"
    rows: list[tuple[str, list[float], int]] = []

    def clear() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    none = {"configure": "none"}
    rows.append(("rvforge minbase (cold cache)",
                 *timed(args.runs, rvforge_tree(cache, **none), clear)))
    rows.append(("rvforge minbase (warm cache)", *timed(args.runs, rvforge_tree(cache, **none))))
    rows.append(("`rvforge build … -o tree.tar` command (cold cache)", *timed(
        args.runs, rvforge_cli(work / "xdg", work / "tree.tar"),
        lambda: shutil.rmtree(work / "xdg", ignore_errors=True))))
    extract = rvforge_tree(cache, variant="extract")
    extract()  # its package set is resolved (and cached) once, as minbase's was above
    rows.append(("rvforge extract (warm cache)", *timed(args.runs, extract)))
    if shutil.which("debootstrap"):
        target = work / "debootstrap"
        rows.append(("debootstrap --foreign --variant=minbase", *timed(args.runs, tool(
            ["debootstrap", "--foreign", "--arch=riscv64", "--variant=minbase", "trixie",
             str(target), mirror], target))))
    if shutil.which("mmdebstrap"):
        target = work / "mmdebstrap"
        include = ",".join(essential_names(cache))
        rows.append(("mmdebstrap --variant=extract --include=<Essential: yes>", *timed(
            args.runs, tool(["mmdebstrap", "--quiet", "--variant=extract",
                             "--architectures=riscv64", f"--include={include}", "trixie",
                             str(target), mirror], target))))
    if args.configured:
        rows.append(("rvforge minbase --configure vm (warm; no root, no binfmt)",
                     *timed(1, rvforge_tree(cache, configure="vm"))))
        rows.append(("rvforge minbase --configure binfmt (warm; root + handler)",
                     *timed(1, rvforge_tree(cache, configure="binfmt"))))
        if shutil.which("mmdebstrap"):
            target = work / "mmdebstrap-minbase"
            rows.append(("mmdebstrap --variant=minbase (root + handler)", *timed(1, tool(
                ["mmdebstrap", "--quiet", "--variant=minbase", "--architectures=riscv64",
                 "trixie", str(target), mirror], target))))
    shutil.rmtree(work, ignore_errors=True)

    print(f"| build (trixie riscv64, {args.runs} runs) | median s | min s | tree MB |")
    print("| --- | ---: | ---: | ---: |")
    for name, times, size in rows:
        print(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | "
              f"{size / 1e6:.0f} |")


if __name__ == "__main__":
    main()
