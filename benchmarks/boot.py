"""Boot benchmark: rvforge's ``qemu-virt`` launcher against the bare ``qemu-system-riscv64``
command line, same image, same kernel, same machine, in the same run.

The image is the Alpine fixture built with ``rvforge build`` (so it has rvforge's
``/init``); the kernel is Debian's (``--kernel auto``, cached). Rounds alternate:

* **bare**: the command line of docs/RISCV-NOTES (``-nographic``, serial on stdout), timed
  from launch to the ready marker on stdout and to QEMU's exit (the init powers off);
* **launcher**: ``QemuVirt().boot()`` called in-process, timed from the call to its
  return (marker seen, power-off requested over the control port, QEMU exited); the
  marker time is the launcher's own ``BootResult.seconds`` (from the call to the marker);
* **cli**: ``rvforge boot IMAGE --kernel PATH`` as a subprocess, whole wall time
  (interpreter start, imports and plugin loading included).

QEMU's boot time varies by a few tenths of a second from run to run on a shared machine,
more than rvforge adds, so rvforge's own work is also timed directly: what it does before
QEMU starts (machine and cached ISA, kernel path, command line, sockets), and what its
power-off over the control port costs after the marker compared with the bare init's.
The table shows medians, minima and maxima over the rounds.

Usage: ``uv run python benchmarks/boot.py [--rounds 5]``
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rvforge import Artifact, BuildContext
from rvforge.cli.common import resolve_machine
from rvforge.log import configure_logging
from rvforge.registry import build_registry

from rvforge_qemu.kernels import resolve_kernel
from rvforge_qemu.options import LaunchOptions
from rvforge_qemu.virt import QemuVirt

ROOT = Path(__file__).resolve().parent.parent
ALPINE = ROOT / "tests/data/alpine/alpine-minirootfs-3.20.3-riscv64.tar.gz"
RVFORGE = str(Path(sys.executable).with_name("rvforge"))
MARKER = b"RVFORGE-READY"


BARE_TIMEOUT = 120.0


def bare(kernel: Path, image: Path) -> tuple[float, float]:
    """Seconds to the marker and to QEMU's exit for the plain command line (which has no
    timeout of its own: the benchmark kills it after ``BARE_TIMEOUT`` and says so)."""
    argv = ["qemu-system-riscv64", "-machine", "virt", "-cpu", "rv64", "-smp", "2",
            "-m", "2048M", "-nographic", "-bios", "default", "-kernel", str(kernel),
            "-initrd", str(image), "-append", "console=ttyS0 rdinit=/init panic=-1",
            "-no-reboot"]
    start = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    watchdog = threading.Timer(BARE_TIMEOUT, process.kill)
    watchdog.start()
    seen = b""
    marker = None
    while chunk := process.stdout.read1(65536):
        seen = (seen + chunk)[-4096:]
        if marker is None and MARKER in seen:
            marker = time.monotonic() - start
    process.wait()
    watchdog.cancel()
    if marker is None:
        tail = seen.decode(errors="replace")[-1500:]
        raise SystemExit(f"bare QEMU never printed the ready marker; console tail:\n{tail}")
    return marker, time.monotonic() - start


def launcher(ctx: BuildContext, kernel: Path, image: Path) -> tuple[float, float]:
    """Seconds to the marker and to the return of ``QemuVirt().boot()``."""
    start = time.monotonic()
    machine = resolve_machine(ctx.registry, "qemu-virt", None, ctx)
    artifact = Artifact(image, "initramfs", "cpio.gz", size=image.stat().st_size)
    result = QemuVirt().boot(artifact, machine, LaunchOptions(kernel=str(kernel)), ctx)
    total = time.monotonic() - start
    if not result.ok:
        raise SystemExit(f"rvforge boot failed: {result.reason}")
    return result.seconds, total  # seconds: from the boot() call to the marker


def prelaunch(ctx: BuildContext, kernel: Path, image: Path) -> float:
    """Seconds rvforge spends before QEMU starts: machine and ISA (cached), kernel, command
    line, the four channel sockets."""
    start = time.monotonic()
    machine = resolve_machine(ctx.registry, "qemu-virt", None, ctx)
    artifact = Artifact(image, "initramfs", "cpio.gz", size=image.stat().st_size)
    options = LaunchOptions(kernel=str(kernel))
    launcher = QemuVirt()
    launcher.command_line(artifact, machine, resolve_kernel(options.kernel, ctx), options, ctx)
    with tempfile.TemporaryDirectory(prefix="rvforge-vm-") as tmp:
        for name in ("console", "ctl", "out", "err"):
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(f"{tmp}/{name}")
            listener.listen(1)
            listener.close()
    return time.monotonic() - start


def cli(kernel: Path, image: Path) -> float:
    start = time.monotonic()
    subprocess.run([RVFORGE, "-q", "boot", str(image), "--kernel", str(kernel)], check=True,
                   capture_output=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    configure_logging(quiet=True)
    with tempfile.TemporaryDirectory(prefix="rvforge-bench-") as tmp, \
            BuildContext(build_registry()) as ctx:
        image = Path(tmp) / "alpine.cpio.gz"
        subprocess.run([RVFORGE, "-q", "build", "--provider", "local", "--source", str(ALPINE),
                        "-o", str(image)], check=True, stdout=subprocess.DEVNULL)
        kernel = resolve_kernel("auto", ctx).image
        rows: dict[str, list[float]] = {k: [] for k in (
            "bare marker", "bare exit", "rvforge marker", "rvforge return", "cli",
            "rvforge before QEMU starts", "rvforge after the marker, over bare")}
        for round_ in range(args.rounds):
            b_marker, b_exit = bare(kernel, image)
            r_marker, r_total = launcher(ctx, kernel, image)
            c_total = cli(kernel, image)
            before = prelaunch(ctx, kernel, image)
            for key, value in zip(rows, (b_marker, b_exit, r_marker, r_total, c_total, before,
                                         (r_total - r_marker) - (b_exit - b_marker))):
                rows[key].append(value)
            print(f"round {round_ + 1}: bare {b_marker:.2f}/{b_exit:.2f} s, rvforge "
                  f"{r_marker:.2f}/{r_total:.2f} s, cli {c_total:.2f} s", file=sys.stderr)
    print("| measure | median (s) | min (s) | max (s) |")
    print("| --- | ---: | ---: | ---: |")
    for key, values in rows.items():
        digits = 3 if key.startswith("rvforge before") else 2
        print(f"| {key} | {statistics.median(values):.{digits}f} | {min(values):.{digits}f} | "
              f"{max(values):.{digits}f} |")


if __name__ == "__main__":
    main()
