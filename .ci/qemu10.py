"""Provide QEMU 10 beside the host's QEMU 7.2 for the tests: ``make setup-qemu10``.

Bookworm's backports suite carries QEMU 10. Its ``qemu-system-riscv``, ``qemu-system-data``
and ``opensbi`` (the firmware ``-bios default`` loads) packages are fetched from the Debian
mirror of this machine's apt sources by the ``Filename:`` of the suite's signed
``Packages.xz`` (InRelease checked with
``gpgv`` and the host's debian-archive-keyring, the index against the Release, each ``.deb``
against the index: rvforge-debootstrap's :class:`DebianArchive` does all three), then
unpacked with ``dpkg -x`` into DEST (default ``build/qemu-10``). Nothing is installed and
no apt source is added; the binary runs on bookworm's own libraries.

Prints the path of ``qemu-system-riscv64``, which the tests take from
``$RVFORGE_TEST_QEMU10``. A second run with the same packages does nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rvforge import BuildContext, RvforgeError, build_registry

from rvforge_debootstrap.archive import DebianArchive

SUITE = "bookworm-backports"
ARCH = "amd64"
PACKAGES = ("qemu-system-riscv", "qemu-system-data", "opensbi")
"""QEMU and its firmware (qemu-system-data links OpenSBI from the opensbi package)."""
BINARY = "usr/bin/qemu-system-riscv64"
STAMP = ".rvforge-qemu10.json"


def provide(dest: Path, ctx: BuildContext) -> Path:
    """Unpack the verified packages into ``dest`` (replacing it whole) unless it already
    holds exactly those versions; return the binary's path."""
    stamp = dest / STAMP
    archive = DebianArchive(ctx, None, SUITE, ARCH)
    wanted = {name: archive.package(name) for name in PACKAGES}
    versions = {name: pkg.version for name, pkg in wanted.items()}
    if stamp.is_file() and (dest / BINARY).is_file():
        try:
            if json.loads(stamp.read_text()) == versions:
                return dest / BINARY
        except ValueError:
            pass  # a corrupt stamp: unpack again
    debs = archive.download_many(wanted.values())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=dest.parent) as tmp:
        staging = Path(tmp, "root")
        for name in PACKAGES:
            subprocess.run(["dpkg", "-x", str(debs[name]), str(staging)], check=True)
        if not (staging / BINARY).is_file():
            raise SystemExit(f"qemu10: {PACKAGES[0]} {versions[PACKAGES[0]]} has no {BINARY}")
        (staging / STAMP).write_text(json.dumps(versions))
        old = Path(tmp, "old")
        if dest.exists():
            dest.rename(old)
        staging.rename(dest)  # the whole directory appears at once
    ctx.log.info("QEMU 10 unpacked", dest=str(dest), **versions)
    return dest / BINARY


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", type=Path, default=Path("build/qemu-10"))
    args = parser.parse_args()
    if shutil.which("dpkg") is None:
        print("qemu10: dpkg is missing (this step needs a Debian host)", file=sys.stderr)
        return 125
    try:
        with BuildContext(build_registry()) as ctx:
            binary = provide(args.dest.resolve(), ctx)
    except RvforgeError as error:
        print(f"qemu10: {error}", file=sys.stderr)
        return int(error.exit_code)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    print(f"{binary}  ({version})", file=sys.stderr)
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
