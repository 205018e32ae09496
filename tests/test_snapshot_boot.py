"""Warm runs on real QEMU (7.2, and 10.x when ``RVFORGE_TEST_QEMU10`` names it, for the
restore itself and its fallbacks): the saved
ready state restored, refreshed and used as a cold boot would be; damaged snapshots fall
back to a cold boot; kept guests (up/exec/ps/down); a guest per test (``rvforge_vm``).

Each test has its own cache (``RVFORGE_CACHE_DIR``), so which run boots cold and which
restores is known; the kernel is passed by path (no lookup)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from qemu_processes import qemu_running_with

pytestmark = [pytest.mark.qemu, pytest.mark.network]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
QEMUS = ["system", *(["qemu10"] if os.environ.get("RVFORGE_TEST_QEMU10") else [])]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path
           ) -> Callable[[str], Path]:
    out = tmp_path_factory.mktemp("snapshot-images")

    def build(name: str) -> Path:
        if not (out / name).exists():
            built = subprocess.run([RVFORGE, "build", "--provider", "local", "--source",
                                    str(alpine_tarball), "-o", str(out / name)],
                                   capture_output=True, text=True, check=False)
            assert built.returncode == 0, built.stderr
        return out / name

    return build


Rvforge = Callable[..., subprocess.CompletedProcess[str]]


def rvforge(cache: Path, runtime: Path, kernel: Path, qemu: list[str]) -> Rvforge:
    """``call(command, *args)``: rvforge with this cache, runtime dir, QEMU and the kernel
    by path, and ``--no-snapshot`` when ``cold`` (for boot, run and up)."""
    runtime.mkdir(mode=0o700, exist_ok=True)

    def call(command: str, *args: str, timeout: float = 600, cold: bool = False,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        # -v: run and up log only warnings otherwise, and the tests read the info lines
        verbose = ["-v"] if command in ("boot", "run", "up") else []
        launch = ["--kernel", str(kernel), *qemu, *(["--no-snapshot"] if cold else [])]
        extra = launch if command in ("boot", "run", "up") else []
        return subprocess.run(
            [RVFORGE, *verbose, command, *extra, *args], capture_output=True, text=True,
            check=False,
            timeout=timeout, env={**os.environ, "RVFORGE_CACHE_DIR": str(cache),
                                  "XDG_RUNTIME_DIR": str(runtime), **(env or {})})

    return call


@pytest.fixture
def rv(request: pytest.FixtureRequest, tmp_path: Path, kernel: Path) -> Rvforge:
    """rvforge with a cache of this test's own (which run boots and which restores is
    known), on the system's QEMU or QEMU 10 where a test is parametrized ``qemu10``."""
    which = getattr(request, "param", "system")
    qemu = ["--qemu", os.environ["RVFORGE_TEST_QEMU10"]] if which == "qemu10" else []
    return rvforge(tmp_path / "cache", tmp_path / "run", kernel, qemu)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests that do not care whether their guest booted or was
    restored: one cold boot for all of them."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def kept_rv(shared_cache: Path, tmp_path: Path, kernel: Path) -> Rvforge:
    """rvforge with the module's shared cache and a runtime dir of this test's own."""
    return rvforge(shared_cache, tmp_path / "run", kernel, [])


def snapshots(rv: Rvforge) -> list[Path]:
    listed = rv("cache", "list", "--kind", "snapshots", "-l", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    return [Path(data["cache_dir"]) / e["path"] for e in data["entries"]
            if e["path"].startswith("qemu/snapshots/")]


PROBE = ("cat /proc/sys/kernel/random/uuid; head -c 16 /dev/urandom | od -An -tx1 | "
         "tr -d ' \\n'; echo; date +%s; cat /mnt/s/f")


@pytest.mark.parametrize("rv", QEMUS, indirect=True)
def test_a_warm_run_restores_fresh_and_prints_what_a_cold_one_does(
        rv: Rvforge, images: Callable[[str], Path],
        tmp_path: Path) -> None:
    image = images("alpine.cpio.gz")
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(f"{name}\n")
    script = "cat /etc/alpine-release; echo out; echo err >&2; ls /; exit 3"
    cold = rv("run", str(image), "--", "sh", "-c", script, cold=True)
    first = rv("run", str(image), "--", "sh", "-c", script)  # boots, saves
    assert "saved the guest's ready state" in first.stderr
    warm = rv("run", str(image), "--", "sh", "-c", script)
    assert "restored the guest from its snapshot" in warm.stderr
    assert (cold.returncode, cold.stdout) == (3, "3.20.3\nout\n" + cold.stdout[11:])
    for result in (first, warm):
        assert (result.returncode, result.stdout) == (cold.returncode, cold.stdout)
        assert "\nerr\n" in result.stderr

    seen = []
    for name in ("one", "two", "one"):  # a share pointing elsewhere each run
        result = rv("run", "--share", f"{tmp_path / name}:/mnt/s", str(image), "--",
                    "sh", "-c", PROBE)
        assert result.returncode == 0, result.stderr
        uuid, noise, clock, shared = result.stdout.split("\n")[:4]
        assert shared == name
        assert abs(int(clock) - time.time()) < 120  # the host's clock, not the save's
        seen.append((uuid, noise))
    assert len({u for u, _ in seen}) == len({n for _, n in seen}) == 3
    assert len(snapshots(rv)) == 2  # without and with one share: two device shapes


@pytest.mark.parametrize("rv", QEMUS, indirect=True)
def test_a_damaged_or_foreign_snapshot_means_a_cold_boot_and_exit_0(
        rv: Rvforge,
        images: Callable[[str], Path]) -> None:
    image = images("alpine.cpio.gz")
    assert rv("boot", str(image)).returncode == 0  # a boot check boots, and saves
    [saved] = snapshots(rv)
    state = saved / "state.zst"
    whole = state.read_bytes()
    state.write_bytes(whole[: len(whole) // 2])
    truncated = rv("run", str(image), "--", "echo", "ok")
    assert (truncated.returncode, truncated.stdout) == (0, "ok\n"), truncated.stderr
    assert re.search(r"snapshot not used \(its state file is truncated .*\); booting cold",
                     truncated.stderr)
    assert "saved the guest's ready state" in truncated.stderr  # and a good one again

    # a foreign state with metadata that fits: only QEMU can tell, and it refuses it
    [saved] = snapshots(rv)
    meta = json.loads((saved / "meta.json").read_text())
    foreign = subprocess.run(["zstd", "-q", "-c"], input=os.urandom(1 << 16),
                             capture_output=True, check=True).stdout
    (saved / "state.zst").write_bytes(foreign)
    (saved / "meta.json").write_text(json.dumps({**meta, "state_bytes": len(foreign)}))
    refused = rv("run", str(image), "--", "echo", "ok")
    assert (refused.returncode, refused.stdout) == (0, "ok\n"), refused.stderr
    assert "snapshot not restored (" in refused.stderr and "booting cold" in refused.stderr

    assert snapshots(rv)  # the cold boot saved a good one again
    cleaned = rv("cache", "clean", "--kind", "snapshots")
    assert cleaned.returncode == 0, cleaned.stderr
    assert snapshots(rv) == []


def test_up_exec_ps_down_keep_state_and_stop_every_vm(
        kept_rv: Rvforge, images: Callable[[str], Path], tmp_path: Path) -> None:
    rv = kept_rv
    image = images("alpine.cpio.gz")
    (tmp_path / "host").mkdir()
    up = rv("up", str(image), "--name", "box", "--share", f"{tmp_path / 'host'}:/mnt/h",
            "--forward", "18022:22")
    assert up.returncode == 0, up.stderr
    try:
        assert rv("exec", "box", "--", "sh", "-c", "echo kept > /tmp/state").returncode == 0
        again = rv("exec", "--", "sh", "-c", "cat /tmp/state; echo e >&2; exit 5")
        assert (again.returncode, again.stdout, again.stderr) == (5, "kept\n", "e\n")
        assert rv("exec", "box", "--", "sh", "-c", "echo w > /mnt/h/f").returncode == 0
        assert (tmp_path / "host" / "f").read_text() == "w\n"
        listed = rv("ps")
        assert re.search(r"^box +alpine\.cpio\.gz +qemu-virt +\d+s +\S+:/mnt/h +18022:22$",
                         listed.stdout, re.M), listed.stdout
        unknown = rv("exec", "nosuch", "--", "true")
        assert unknown.returncode == 2
        assert unknown.stderr == "rvforge: error: no running guest named 'nosuch'; " \
                                 "running: box\n"
        twice = rv("up", str(image), "--name", "box")
        assert twice.returncode == 2 and "already running" in twice.stderr
    finally:
        down = rv("down", "box")
    assert down.returncode == 0, down.stderr
    assert not qemu_running_with(image)
    assert rv("ps").stdout == "no guests running\n"


def test_a_dead_keeper_is_noticed_and_cleaned(
        kept_rv: Rvforge, images: Callable[[str], Path], tmp_path: Path) -> None:
    rv = kept_rv
    image = images("alpine.cpio.gz")
    assert rv("up", str(image), "--name", "gone").returncode == 0
    record = json.loads((tmp_path / "run" / "rvforge" / "gone.json").read_text())
    os.killpg(record["pid"], 9)
    deadline = time.monotonic() + 30
    while qemu_running_with(image) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not qemu_running_with(image)  # the VM died with its keeper
    assert rv("ps").stdout == "no guests running\n"
    assert not (tmp_path / "run" / "rvforge" / "gone.json").exists()
    assert rv("exec", "gone", "--", "true").returncode == 2


def test_kept_guests_are_the_owners_only(kept_rv: Rvforge, tmp_path: Path) -> None:
    rv = kept_rv
    runtime = tmp_path / "run" / "rvforge"
    runtime.mkdir(mode=0o700)
    runtime.chmod(0o755)
    opened = rv("ps")
    assert opened.returncode == 2
    assert opened.stderr == (f"rvforge: error: {runtime}: mode 0755 lets other users in; "
                             f"run `chmod 700 {runtime}`\n")
    runtime.chmod(0o700)
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("another user is tried as root with setpriv")
    (tmp_path).chmod(0o755)
    (tmp_path / "run").chmod(0o755)
    reachable = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "test", "-r", RVFORGE], check=False)
    if reachable.returncode != 0:  # a checkout in a 0700 directory: nobody cannot start it
        pytest.skip(f"{RVFORGE} is not readable by uid 65534")
    other = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", RVFORGE, "exec",
         "x", "--", "true"], capture_output=True, text=True, check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run")})
    assert other.returncode == 2, other.stderr
    assert f"{runtime}: owned by uid 0, not by you (uid 65534)" in other.stderr \
        or "not reachable by this user" in other.stderr


def test_rvforge_vm_gives_each_test_its_own_restored_guest(
        images: Callable[[str], Path], kernel: Path, tmp_path: Path,
        shared_cache: Path) -> None:
    image = images("alpine.cpio.gz")
    (tmp_path / "test_vm.py").write_text(textwrap.dedent("""
        def test_writes(rvforge_vm):
            assert rvforge_vm.run("echo mine > /tmp/left-behind").status == 0

        def test_does_not_see_it(rvforge_vm):
            result = rvforge_vm.run("cat /tmp/left-behind")
            assert result.status == 1 and result.stdout == b""

        def test_session_guest_still_shared(rvforge_guest):
            assert rvforge_guest.run("true").status == 0
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), "--rvforge-image",
         str(image), "--rvforge-kernel", str(kernel), str(tmp_path / "test_vm.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "RVFORGE_CACHE_DIR": str(shared_cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert not qemu_running_with(image)


def test_under_xdist_each_worker_restores_guests_of_its_own(
        images: Callable[[str], Path], kernel: Path, tmp_path: Path) -> None:
    """``pytest -n 2`` with an empty cache: the two workers' first guests boot and save
    the same key at once (one snapshot results, whole), every later test restores, and
    no test sees another's writes, across workers either."""
    image = images("alpine.cpio.gz")
    cache = tmp_path / "cache"
    tests = "".join(textwrap.dedent(f"""
        def test_{n}(rvforge_vm):
            assert rvforge_vm.run("test ! -e /tmp/mark && echo {n} > /tmp/mark").status == 0
            assert rvforge_vm.run("cat /tmp/mark").stdout == b"{n}\\n"
    """) for n in range(6))
    (tmp_path / "test_vm.py").write_text(tests)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "-p", "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), "--rvforge-image",
         str(image), "--rvforge-kernel", str(kernel), str(tmp_path / "test_vm.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, "RVFORGE_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    snapshots = [p for p in (cache / "qemu" / "snapshots").iterdir()
                 if not p.name.startswith(".")]
    assert len(snapshots) == 1 and (snapshots[0] / "state.zst").stat().st_size > 1_000_000
    assert not qemu_running_with(image)


def test_an_ext4_image_restores_what_the_guest_wrote_and_stays_clean(
        rv: Rvforge,
        images: Callable[[str], Path]) -> None:
    """The PyTorch image's kind of workload: files written, the guest restored many times,
    each restore reads back the same bytes; the image file is never written."""
    image = images("alpine.ext4")
    before = image.read_bytes()
    write = ("mkdir -p /work && head -c 3000000 /dev/urandom > /work/blob && "
             "sha256sum /work/blob | cut -c1-64")
    assert rv("boot", str(image)).returncode == 0
    digests = set()
    for _ in range(4):
        result = rv("run", str(image), "--", "sh", "-c",
                    f"{write} && sync && sha256sum /work/blob | cut -c1-64 && "
                    "ls /work && cat /etc/alpine-release")
        assert result.returncode == 0, result.stderr
        written, read_back, listing, release = result.stdout.split("\n")[:4]
        assert written == read_back and (listing, release) == ("blob", "3.20.3")
        assert "restored the guest from its snapshot" in result.stderr
        digests.add(written)
    assert len(digests) == 4  # fresh randomness in every restore
    assert image.read_bytes() == before
    fsck = subprocess.run(["/sbin/e2fsck", "-fn", str(image)], capture_output=True,
                          text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
