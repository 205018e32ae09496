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
  (interpreter start, imports and plugin loading included);
* **dev**: the launcher again with ``--share DIR:/mnt/share --net``: the kernel modules
  travel in a second cpio before the image (cached after the first round, concatenated
  with the image at every boot), the guest loads 9p, 9pnet_virtio, virtio_net and their
  dependencies, configures eth0 and mounts the share before the marker.

QEMU's boot time varies by a few tenths of a second from run to run on a shared machine,
more than rvforge adds, so rvforge's own work is also timed directly: what it does before
QEMU starts (machine and cached ISA, kernel path, command line, sockets), and what its
power-off over the control port costs after the marker compared with the bare init's.
The table shows medians, minima and maxima over the rounds.

With ``--debian`` it measures instead the development loop's image against Alpine's:
the Debian image of the README's one-liner (``rvforge build --provider debootstrap -o
debian.cpio.gz``, configured at build time) and the Alpine fixture, each booted by
``rvforge run IMG -- true`` (the whole command, wall time), rounds alternating, same
kernel, same run; the Debian image also recompressed with rvforge's zstd, to see what
unpacking costs (``--debian-image PATH`` uses an image built so before, instead of
building one). From each console log: when the kernel
started and finished unpacking the initramfs and when it ran ``/init`` (guest clock).
It prints the ratio to Alpine and the load average before and after.

With ``--warm`` it measures snapshots (docs/qemu.md, "Snapshots"): for the Alpine
initramfs, the Alpine image as ext4, and the default Debian image (``--debian-image PATH``,
else built first), in the same run, ``rvforge run IMG -- true`` cold (``--no-snapshot``) and
warm (the default: restored, QEMU started before the command line is parsed, see docs/qemu.md),
and warm without that early start (``RVFORGE_NO_PRESTART=1``), rounds alternating, each whole
command's wall time; the snapshot's size and save time; where a warm run's time goes without the
early start (interpreter start and imports, the restore, the refresh and first command); and
``rvforge exec GUEST -- true`` against a
guest kept by ``rvforge up``. It runs with a private cache (``RVFORGE_CACHE_DIR``) so the
first run of each image is the one that saves. Every ``rvforge`` it starts runs with bytecode,
as an installed rvforge does: it first compiles the virtual environment and rvforge's sources
(``python -m compileall -q``) and unsets ``PYTHONDONTWRITEBYTECODE`` for its children
(without bytecode each start compiles every module again: about 0.4 s more).

Usage: ``uv run python benchmarks/boot.py [--rounds 5]``, ``uv run python
benchmarks/boot.py --debian [--rounds 5]`` (a Debian build first: a few minutes),
``uv run python benchmarks/boot.py --warm [--rounds 5] [--debian-image PATH]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rvforge import Artifact, BuildContext
from rvforge.formats.compression import open_compressed, open_decompressed
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


def launcher(ctx: BuildContext, kernel: Path, image: Path, **dev: Any) -> tuple[float, float]:
    """Seconds to the marker and to the return of ``QemuVirt().boot()`` (``dev``: more
    launch options, e.g. shares and networking)."""
    start = time.monotonic()
    machine = ctx.registry.resolve_machine("qemu-virt", None, ctx)
    artifact = Artifact(image, "initramfs", "cpio.gz", size=image.stat().st_size)
    result = QemuVirt().boot(artifact, machine, LaunchOptions(kernel=str(kernel), **dev), ctx)
    total = time.monotonic() - start
    if not result.ok:
        raise SystemExit(f"rvforge boot failed: {result.reason}")
    return result.seconds, total  # seconds: from the boot() call to the marker


def prelaunch(ctx: BuildContext, kernel: Path, image: Path, **dev: Any) -> float:
    """Seconds rvforge spends before QEMU starts: machine and ISA (cached), kernel, command
    line (with ``dev``: the cached module archive concatenated with the image), the four
    channel sockets."""
    start = time.monotonic()
    machine = ctx.registry.resolve_machine("qemu-virt", None, ctx)
    artifact = Artifact(image, "initramfs", "cpio.gz", size=image.stat().st_size)
    options = LaunchOptions(kernel=str(kernel), **dev)
    launcher = QemuVirt()
    launcher.prepare(artifact, machine, options, ctx)
    with tempfile.TemporaryDirectory(prefix="rvforge-vm-") as tmp:
        for name in ("console", "ctl", "out", "err"):
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(f"{tmp}/{name}")
            listener.listen(1)
            listener.close()
    return time.monotonic() - start


def cli(kernel: Path, image: Path) -> float:
    start = time.monotonic()
    subprocess.run([RVFORGE, "-q", "boot", str(image), "--kernel", str(kernel),
                    "--no-snapshot"], check=True,
                   capture_output=True)
    return time.monotonic() - start


KERNEL_TIME = re.compile(rb"^\[\s*(\d+\.\d+)\] (.*)$", re.MULTILINE)


def console_times(log: Path) -> dict[str, float]:
    """Guest seconds at which the kernel began and ended unpacking the initramfs and ran
    ``/init``, from a console log."""
    found = {}
    for match in KERNEL_TIME.finditer(log.read_bytes()):
        stamp, text = float(match.group(1)), match.group(2)
        for key, prefix in (("unpack start", b"Trying to unpack rootfs"),
                            ("unpack end", b"Freeing initrd memory"),
                            ("init", b"Run /init")):
            if text.startswith(prefix) and key not in found:
                found[key] = stamp
    return found


def run_true(image: Path, kernel: Path, log: Path) -> float | None:
    """Wall seconds of a cold ``rvforge run IMAGE -- true`` (``--no-snapshot``); ``None``
    (said on stderr, the console log kept in the current directory) if it failed."""
    start = time.monotonic()
    result = subprocess.run([RVFORGE, "-q", "run", str(image), "--kernel", str(kernel),
                             "--no-snapshot", "--console-log", str(log), "--", "true"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        kept = Path.cwd() / f"failed-{log.name}"
        shutil.copyfile(log, kept)
        print(f"{image.name}: exit {result.returncode} after "
              f"{time.monotonic() - start:.0f} s: {result.stderr.strip()[-300:]}; console "
              f"log: {kept}", file=sys.stderr)
        return None
    return time.monotonic() - start


def recompress(source: Path, output: Path, kind: str | None) -> Path:
    """``source`` (a compressed cpio) as ``kind`` (``zst``, or ``None`` for none), written
    by rvforge's own compressor."""
    with open_decompressed(source) as raw, open_compressed(output, kind) as out:
        shutil.copyfileobj(raw, out, 1 << 20)
    return output


def build_debian(output: Path) -> str:
    """Build the README's one-liner to ``output``; say how long it took and in which
    configure mode."""
    start = time.monotonic()
    built = subprocess.run([RVFORGE, "build", "--provider", "debootstrap", "-o", str(output)],
                           check=True, capture_output=True, text=True)
    mode = re.search(r"configure\s+mode=(\S+)", built.stderr)
    return (f"built by `rvforge build --provider debootstrap -o debian.cpio.gz` in "
            f"{time.monotonic() - start:.0f} s, configure mode={mode.group(1) if mode else '?'}")


def debian_against_alpine(rounds: int, given: Path | None) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rvforge-bench-") as tmp, \
            BuildContext(build_registry()) as ctx:
        work = Path(tmp)
        alpine = work / "alpine.cpio.gz"
        subprocess.run([RVFORGE, "-q", "build", "--provider", "local", "--source", str(ALPINE),
                        "-o", str(alpine)], check=True, stdout=subprocess.DEVNULL)
        debian = given or work / "debian.cpio.gz"
        origin = f"given ({given})" if given else build_debian(debian)
        images = {"alpine .cpio.gz": alpine, "debian .cpio.gz": debian,
                  "debian .cpio.zst": recompress(debian, work / "debian.cpio.zst", "zst")}
        sizes = {name: image.stat().st_size for name, image in images.items()}
        kernel = resolve_kernel("auto", ctx).image
        walls: dict[str, list[float]] = {name: [] for name in images}
        unpack: dict[str, list[float]] = {name: [] for name in images}
        init: dict[str, list[float]] = {name: [] for name in images}
        failed = dict.fromkeys(images, 0)
        for round_ in range(rounds):
            for name, image in images.items():
                log = work / f"{image.name}.{round_}.log"
                wall = run_true(image, kernel, log)
                if wall is None:
                    failed[name] += 1
                    continue
                walls[name].append(wall)
                times = console_times(log)
                unpack[name].append(times.get("unpack end", 0) - times.get("unpack start", 0))
                init[name].append(times.get("init", 0))
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {walls[name][-1]:.2f} s" for name in images if walls[name]),
                file=sys.stderr)
    load_after = os.getloadavg()
    print(f"Debian image: {origin}; load average before {load_before[0]:.1f}/"
          f"{load_before[1]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f} (1/5 min)\n")
    print(f"| `rvforge run IMG -- true`, {rounds} rounds | MB | median s | min s | max s | "
          "kernel unpacking s | `/init` at s | failed |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, image_walls in walls.items():
        if not image_walls:
            print(f"| {name} | {sizes[name] / 1e6:.1f} | | | | | | {failed[name]} |")
            continue
        print(f"| {name} | {sizes[name] / 1e6:.1f} | {statistics.median(image_walls):.2f} | "
              f"{min(image_walls):.2f} | {max(image_walls):.2f} | "
              f"{statistics.median(unpack[name]):.2f} | {statistics.median(init[name]):.2f} | "
              f"{failed[name]} |")
    if walls["alpine .cpio.gz"]:
        base = statistics.median(walls["alpine .cpio.gz"])
        print("\nratio to Alpine (medians): " + ", ".join(
            f"{name} {statistics.median(w) / base:.2f}x" for name, w in walls.items()
            if name != "alpine .cpio.gz" and w))


RESTORED = re.compile(r"restored the guest from its snapshot .*?seconds=([\d.]+)")


def warm_run(image: Path, kernel: Path, env: dict[str, str], *flags: str
             ) -> tuple[float, float | None]:
    """Wall seconds of ``rvforge run IMAGE -- true`` and the restore's seconds (``None``:
    it booted)."""
    start = time.monotonic()
    result = subprocess.run([RVFORGE, "-v", "run", str(image), "--kernel", str(kernel),
                             *flags, "--", "true"], capture_output=True, text=True, check=False,
                            env=env)
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{image.name}: exit {result.returncode}: {result.stderr[-500:]}")
    restored = RESTORED.search(result.stderr)
    return wall, float(restored.group(1)) if restored else None


def snapshot_facts(cache: Path) -> dict[str, tuple[int, float]]:
    """Image path → (snapshot bytes, save seconds) of the snapshots in ``cache``."""
    import json

    facts = {}
    for meta in (cache / "qemu" / "snapshots").glob("*/meta.json"):
        data = json.loads(meta.read_text())
        facts[data.get("image", "?")] = (data["state_bytes"], data.get("save_seconds", 0.0))
    return facts


def interpreter_start(env: dict[str, str]) -> float:
    """Seconds to start Python and import rvforge's command line (what every command
    pays before it does anything)."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import rvforge.cli.application"], check=True,
                   env=env)
    return time.monotonic() - start


def with_bytecode() -> dict[str, str]:
    """Compile the environment's and rvforge's modules, and the environment for children
    that use the bytecode (see the module docstring)."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "compileall", "-q", sysconfig.get_paths()["purelib"],
                    *map(str, sorted(ROOT.glob("rvforge-*/src")))], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def exec_rounds(image: Path, kernel: Path, env: dict[str, str], rounds: int) -> list[float]:
    """``rvforge exec bench -- true`` wall seconds against a guest kept by ``rvforge up``."""
    subprocess.run([RVFORGE, "-q", "up", str(image), "--kernel", str(kernel),
                    "--name", "bench"], check=True, env=env, capture_output=True)
    try:
        times = []
        for _ in range(rounds):
            start = time.monotonic()
            subprocess.run([RVFORGE, "exec", "bench", "--", "true"], check=True, env=env)
            times.append(time.monotonic() - start)
        return times
    finally:
        subprocess.run([RVFORGE, "down", "bench"], check=True, env=env, capture_output=True)


def warm_against_cold(rounds: int, given: Path | None) -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rvforge-bench-") as tmp, \
            BuildContext(build_registry()) as ctx:
        work = Path(tmp)
        runtime = work / "run"
        runtime.mkdir(mode=0o700)
        env = {**with_bytecode(), "RVFORGE_CACHE_DIR": str(work / "cache"),
               "XDG_RUNTIME_DIR": str(runtime)}
        images = {}
        for name in ("alpine.cpio.gz", "alpine.ext4"):
            subprocess.run([RVFORGE, "-q", "build", "--provider", "local", "--source",
                            str(ALPINE), "-o", str(work / name)], check=True,
                           stdout=subprocess.DEVNULL)
            images[name] = work / name
        debian = given or work / "debian.cpio.gz"
        origin = f"given ({given})" if given else build_debian(debian)
        images["debian.cpio.gz"] = debian
        kernel = resolve_kernel("auto", ctx).image
        cold: dict[str, list[float]] = {name: [] for name in images}
        warm: dict[str, list[float]] = {name: [] for name in images}
        late: dict[str, list[float]] = {name: [] for name in images}
        restore: dict[str, list[float]] = {name: [] for name in images}
        no_early = {**env, "RVFORGE_NO_PRESTART": "1"}
        for image in images.values():  # the first run of each saves, the second remembers
            warm_run(image, kernel, env)
            warm_run(image, kernel, env)
        for round_ in range(rounds):
            for name, image in images.items():
                cold[name].append(warm_run(image, kernel, env, "--no-snapshot")[0])
                warm[name].append(warm_run(image, kernel, env)[0])
                wall, restored = warm_run(image, kernel, no_early)
                late[name].append(wall)
                if restored is not None:
                    restore[name].append(restored)
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {cold[name][-1]:.2f}/{warm[name][-1]:.2f}/{late[name][-1]:.2f} s"
                for name in images), file=sys.stderr)
        starts = [interpreter_start(env) for _ in range(rounds)]
        execs = exec_rounds(images["alpine.cpio.gz"], kernel, env, rounds)
        facts = snapshot_facts(work / "cache")
    load_after = os.getloadavg()
    print(f"Debian image: {origin}; load average before {load_before[0]:.1f}/"
          f"{load_before[1]:.1f}, after {load_after[0]:.1f}/{load_after[1]:.1f} (1/5 min)\n")
    print(f"| `rvforge run IMG -- true`, {rounds} rounds | cold median s | warm median s | "
          "warm min–max s | cold / warm | warm, no early restore: median s | its restore s | "
          "snapshot MB | save s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, image in images.items():
        size, save = facts.get(str(image), (0, 0.0))
        c, w = statistics.median(cold[name]), statistics.median(warm[name])
        r = f"{statistics.median(restore[name]):.2f}" if restore[name] else "–"
        print(f"| {name} | {c:.2f} | {w:.2f} | {min(warm[name]):.2f}–{max(warm[name]):.2f} "
              f"| {c / w:.1f}× | {statistics.median(late[name]):.2f} | {r} | {size / 1e6:.1f} "
              f"| {save:.2f} |")
    start = statistics.median(starts)
    for name in images:
        if restore[name]:
            rest = statistics.median(late[name]) - start - statistics.median(restore[name])
            print(f"\n{name}, warm without the early restore (medians): interpreter start + "
                  f"CLI imports {start:.2f} s, QEMU started and the state loaded "
                  f"{statistics.median(restore[name]):.2f} s, the rest (arguments, the launch "
                  f"worked out, the refresh request, the command, QEMU stopped) {rest:.2f} s",
                  end="")
    print(f"\n\ninterpreter start + CLI imports: median {statistics.median(starts):.2f} s; "
          f"`rvforge exec bench -- true` (kept Alpine guest): median "
          f"{statistics.median(execs):.2f} s, min {min(execs):.2f}, max {max(execs):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--debian", action="store_true",
                        help="time `rvforge run IMG -- true` for the default Debian image "
                        "against Alpine's instead")
    parser.add_argument("--debian-image", type=Path,
                        help="with --debian or --warm: this image (built by the one-liner) "
                        "instead of building one")
    parser.add_argument("--warm", action="store_true",
                        help="time warm runs (restored snapshots) against cold ones for "
                        "Alpine (initramfs and ext4) and the default Debian image")
    args = parser.parse_args()
    configure_logging(quiet=True)
    if args.warm:
        warm_against_cold(args.rounds, args.debian_image)
        return
    if args.debian:
        debian_against_alpine(args.rounds, args.debian_image)
        return
    with tempfile.TemporaryDirectory(prefix="rvforge-bench-") as tmp, \
            BuildContext(build_registry()) as ctx:
        image = Path(tmp) / "alpine.cpio.gz"
        subprocess.run([RVFORGE, "-q", "build", "--provider", "local", "--source", str(ALPINE),
                        "-o", str(image)], check=True, stdout=subprocess.DEVNULL)
        kernel = resolve_kernel("auto", ctx).image
        dev = {"share": [f"{tmp}:/mnt/share"], "net": True}
        rows: dict[str, list[float]] = {k: [] for k in (
            "bare marker", "bare exit", "rvforge marker", "rvforge return", "cli",
            "rvforge before QEMU starts", "rvforge after the marker, over bare",
            "rvforge marker, --share --net", "rvforge before QEMU starts, --share --net")}
        for round_ in range(args.rounds):
            b_marker, b_exit = bare(kernel, image)
            r_marker, r_total = launcher(ctx, kernel, image)
            c_total = cli(kernel, image)
            before = prelaunch(ctx, kernel, image)
            d_marker, _ = launcher(ctx, kernel, image, **dev)
            d_before = prelaunch(ctx, kernel, image, **dev)
            for key, value in zip(rows, (b_marker, b_exit, r_marker, r_total, c_total, before,
                                         (r_total - r_marker) - (b_exit - b_marker),
                                         d_marker, d_before)):
                rows[key].append(value)
            print(f"round {round_ + 1}: bare {b_marker:.2f}/{b_exit:.2f} s, rvforge "
                  f"{r_marker:.2f}/{r_total:.2f} s, cli {c_total:.2f} s, --share --net "
                  f"{d_marker:.2f} s", file=sys.stderr)
    print("| measure | median (s) | min (s) | max (s) |")
    print("| --- | ---: | ---: | ---: |")
    for key, values in rows.items():
        digits = 3 if key.startswith("rvforge before") else 2
        print(f"| {key} | {statistics.median(values):.{digits}f} | {min(values):.{digits}f} | "
              f"{max(values):.{digits}f} |")


if __name__ == "__main__":
    main()
