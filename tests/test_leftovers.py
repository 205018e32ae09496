"""SIGKILL's leftovers are swept: a build killed while packing leaves ``.NAME.PID.part`` in
the output directory and its scratch directory in ``$TMPDIR``; the next build removes those
whose process is dead (and no one else's). A temporary name always fits the file system."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from interrupted_build import packing_build

from rvforge import BuildContext
from rvforge.leftovers import part_path, sweep_stale_scratch
from rvforge.net.download import write_atomic
from rvforge.plugins import PluginManager
from rvforge.registry import Registry


def rvforge(*args: str, tmp: Path) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("rvforge")
    return subprocess.Popen([str(exe), "--quiet", *args], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})


def test_a_killed_builds_part_file_and_scratch_directory_are_swept(tmp_path: Path) -> None:
    build = packing_build(tmp_path)
    victim, root, tmp, out = build.process, build.root, build.tmp, build.out
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    left_parts, left_scratch = list(out.glob(".*.part")), list(tmp.iterdir())
    assert len(left_parts) == 1 and re.fullmatch(
        rf"\.image\.cpio\.xz\.[0-9a-f]{{8}}\.{victim.pid}\.part", left_parts[0].name), left_parts
    assert [p.name for p in left_scratch] and all(
        p.name.startswith(f"rvforge-{victim.pid}-") for p in left_scratch)
    other = tmp / "someone-elses"  # not rvforge's: kept
    other.mkdir()
    (root / "noise").unlink()
    later = rvforge("build", "--provider", "local", "--source", str(root), "--no-audit",
                    "--isa", "rv64gc", "-o", str(out / "small.tar"), tmp=tmp)
    _, stderr = later.communicate(timeout=120)
    assert later.returncode == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["small.tar"]
    assert list(tmp.iterdir()) == [other]


def test_scratch_directories_of_living_processes_and_other_names_are_kept(
        tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"rvforge-{dead.pid}-abc123"
    living = tmp_path / "rvforge-1-abc123"  # init: alive
    mine = tmp_path / f"rvforge-{os.getpid()}-abc123"
    unrelated = tmp_path / f"rvforge-gpgv-{dead.pid}"
    for path in (stale, living, mine, unrelated):
        (path / "sub").mkdir(parents=True)
    assert sweep_stale_scratch(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (living, mine, unrelated))


def test_a_255_byte_output_name_has_a_temporary_name_that_fits(tmp_path: Path) -> None:
    output = tmp_path / ("é" * 120 + "x.tar.gz")[-250:]
    output = output.with_name(output.name + "a" * (255 - len(os.fsencode(output.name))))
    assert len(os.fsencode(output.name)) == 255
    temp = part_path(output)
    assert len(os.fsencode(temp.name)) <= 255 and temp.name.endswith(f".{os.getpid()}.part")
    temp.write_bytes(b"fits")  # the file system agrees
    os.replace(temp, output)
    assert output.read_bytes() == b"fits"


def test_a_255_byte_output_name_is_built(tmp_path: Path) -> None:
    """It was refused: the temporary ``.NAME.PID.part`` was longer than 255 bytes."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "f").write_text("x")
    name = "i" * (255 - len(".tar")) + ".tar"
    output = tmp_path / "out" / name
    build = rvforge("build", "--provider", "local", "--source", str(tmp_path / "root"),
                    "--no-audit", "--isa", "rv64gc", "-o", str(output), tmp=tmp_path)
    _, stderr = build.communicate(timeout=120)
    assert build.returncode == 0, stderr
    assert [p.name for p in output.parent.iterdir()] == [name]


def test_threads_of_one_process_writing_one_file_never_share_a_temporary_name(
        tmp_path: Path) -> None:
    """``rvforge run --machine A,B`` digests one image from two threads: with one
    ``.NAME.PID.part`` per process, one thread's rename took the other's file away."""
    target = tmp_path / "memo"
    errors: list[OSError] = []

    def write(data: bytes) -> None:
        try:
            for _ in range(300):
                write_atomic(target, data)
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(bytes([n]) * 4096,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_bytes() in {bytes([n]) * 4096 for n in range(4)}
    assert [p.name for p in tmp_path.iterdir()] == ["memo"]
    assert part_path(target) != part_path(target)


def _catches(pid: int, signum: int) -> bool:
    """True once process ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signum - 1)))


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_while_the_cli_is_still_importing_is_an_interrupt(
        tmp_path: Path, signum: int, code: int) -> None:
    """Sent the moment the handler is installed (the CLI's modules not yet imported): once
    exit 130 with a KeyboardInterrupt traceback."""
    process = rvforge("plugins", tmp=tmp_path)
    deadline = time.monotonic() + 30
    while not _catches(process.pid, signum):
        assert process.poll() is None and time.monotonic() < deadline
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines() == ["rvforge: interrupted"]


def test_an_error_naming_the_temporary_file_names_the_output(
        rvforge_plugin_manager: PluginManager, rvforge_registry: Callable[[], Registry],
        rvforge_context: BuildContext, tmp_path: Path) -> None:
    """A packer's (here: a plugin's) message about the file it writes names ``-o``, not
    ``.NAME.PID.part``."""
    from typing import ClassVar

    from rvforge import InputError, Packer, Step, Tree, hookimpl
    from rvforge.pipeline import pack
    from rvforge.testing import registered_plugin

    class Failing(Packer):
        name = "failing"
        summary = "fails naming its output"
        suffixes: ClassVar[tuple[str, ...]] = (".fail",)
        kind = "disk"

        def pack(self, tree: Tree, output: Path, fmt: str, ctx: object) -> None:
            output.write_bytes(b"half")
            raise InputError(f"{output}: the tool failed writing {output.name}")

    class Plugin:
        @hookimpl
        def rvforge_register_packers(self, register):  # type: ignore[no-untyped-def]
            register(Failing)

    output = tmp_path / "out" / "image.fail"
    with registered_plugin(rvforge_plugin_manager, Plugin()):
        with pytest.raises(InputError) as raised:
            pack(rvforge_registry(), Tree(), Step("failing", None), "fail", output,
                 rvforge_context)
    assert str(raised.value) == f"{output}: the tool failed writing image.fail"
    assert list(output.parent.iterdir()) == []
