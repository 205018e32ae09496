"""The snapshot store and its key (no guest boots here; restores on real QEMU are in
tests/test_snapshot_boot.py): what is in the key and what is not, a file hashed once per
identity, publish/validate/evict, and QMP errors as data from a real QEMU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from rvforge import BuildContext

from rvforge_qemu.devices import Share
from rvforge_qemu.fresh import PROGRAM, fresh_script, install_script
from rvforge_qemu.qemubin import system_qemu
from rvforge_qemu.qmp import Qmp, QmpError, qmp_args
from rvforge_qemu.snapshots import (
    CAP_VARIABLE,
    FileDigests,
    SnapshotStore,
    normalized_argv,
    snapshot_key,
)
from rvforge_qemu.warm import _RefreshGate

ZSTD = shutil.which("zstd")


def argv(kernel: Path, share: str = "/srv/a", fwd: str = ",hostfwd=tcp:127.0.0.1:8080-:80",
         shares: int = 1, memory: str = "512M") -> list[str]:
    words = ["qemu-system-riscv64", "-m", memory, "-kernel", str(kernel),
             "-append", "console=ttyS0 rdinit=/init"]
    for n in range(shares):
        words += ["-fsdev", f"local,id=rvforge-fs{n},path={share}{n},security_model=none",
                  "-device", f"virtio-9p-pci,fsdev=rvforge-fs{n},mount_tag=rvshare{n}"]
    return [*words, "-netdev", f"user,id=rvforge-net{fwd}"]


@pytest.fixture
def kernel(tmp_path: Path) -> Path:
    path = tmp_path / "vmlinux"
    path.write_bytes(b"kernel image bytes")
    return path


def key_of(ctx: BuildContext, words: list[str]) -> str:
    store = SnapshotStore(ctx)
    return snapshot_key(system_qemu({}, ctx), words, "qemu-virt", store.digests).digest


def test_share_directories_and_forwards_are_not_in_the_key(ctx: BuildContext,
                                                          kernel: Path) -> None:
    base = key_of(ctx, argv(kernel))
    assert key_of(ctx, argv(kernel, share="/elsewhere/b", fwd="")) == base
    assert key_of(ctx, argv(kernel, shares=2)) != base  # the device shape is
    assert key_of(ctx, argv(kernel, memory="1024M")) != base
    kernel.write_bytes(b"another kernel")
    assert key_of(ctx, argv(kernel)) != base


def test_files_are_named_by_digest_in_the_key(ctx: BuildContext, kernel: Path,
                                              tmp_path: Path) -> None:
    image = tmp_path / "disk,1.ext4"
    image.write_bytes(b"disk")
    words = normalized_argv(["-kernel", str(kernel), "-drive",
                             "file=" + str(image).replace(",", ",,") + ",format=raw"],
                            FileDigests(tmp_path / "digests"))
    assert str(tmp_path) not in " ".join(words)
    assert words[1].startswith("sha256:") and words[3].startswith("file=sha256:")
    assert words[3].endswith(",format=raw")


def test_a_file_is_hashed_once_per_identity(tmp_path: Path) -> None:
    digests = FileDigests(tmp_path / "digests")
    image = tmp_path / "image"
    image.write_bytes(b"A" * 4096)
    first = digests.of(image)
    stat = image.stat()
    image.write_bytes(b"B" * 4096)  # same size; the old mtime put back: same identity
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert digests.of(image) == first  # remembered, not re-read
    image.write_bytes(b"B" * 4097)
    assert digests.of(image) != first


def publish(store: SnapshotStore, key_words: list[str], payload: bytes) -> Path:
    key = snapshot_key(system_qemu({}, store.ctx), key_words, "qemu-virt", store.digests)
    state = store.new_state(key)
    subprocess.run([ZSTD or "zstd", "-q", "-o", str(state)], input=payload, check=True)
    final = store.commit(key, state, image="test")
    assert final is not None
    return final


@pytest.mark.skipif(ZSTD is None, reason="zstd is not installed")
def test_a_published_snapshot_is_found_and_a_damaged_one_is_refused(
        ctx: BuildContext, kernel: Path) -> None:
    store = SnapshotStore(ctx)
    words = argv(kernel)
    key = snapshot_key(system_qemu({}, ctx), words, "qemu-virt", store.digests)
    final = publish(store, words, os.urandom(100_000))
    assert store.find(key) is not None
    state = final / "state.zst"
    with open(state, "r+b") as stream:  # truncated
        stream.truncate(state.stat().st_size // 2)
    with capture_logs() as logs:
        assert store.find(key) is None
    assert len(logs) == 1
    assert logs[0]["event"].startswith("snapshot not used (its state file is truncated (")
    assert logs[0]["event"].endswith("); booting cold")
    assert not final.exists()  # removed, the next run saves a new one

    final = publish(store, words, b"state")
    meta = json.loads((final / "meta.json").read_text())
    meta["key"] = "0" * 64  # another configuration's snapshot under this name
    (final / "meta.json").write_text(json.dumps(meta))
    with capture_logs() as logs:
        assert store.find(key) is None
    assert "another configuration" in logs[0]["event"]

    final = publish(store, words, b"state")
    (final / "state.zst").write_bytes(b"not zstd" + b"\0" * (meta["state_bytes"] - 8))
    with capture_logs() as logs:
        assert store.find(key) is None
    assert "not zstd" in logs[0]["event"]


@pytest.mark.skipif(ZSTD is None, reason="zstd is not installed")
def test_two_first_saves_at_once_leave_one_whole_snapshot(ctx: BuildContext,
                                                         kernel: Path) -> None:
    store = SnapshotStore(ctx)
    key = snapshot_key(system_qemu({}, ctx), argv(kernel), "qemu-virt", store.digests)
    first, second = store.new_state(key), store.root / f".{key.digest}.1.part" / "state.zst"
    second.parent.mkdir()
    for state, payload in ((first, b"one"), (second, b"two")):
        subprocess.run([ZSTD or "zstd", "-q", "-o", str(state)], input=payload, check=True)
    assert store.commit(key, first) == store.commit(key, second) == store.root / key.digest
    assert sorted(p.name for p in store.root.iterdir()) == [key.digest]
    found = store.find(key)
    assert found is not None
    assert subprocess.run([ZSTD or "zstd", "-dc", str(found.state)], capture_output=True,
                          check=True).stdout == b"one"


@pytest.mark.skipif(ZSTD is None, reason="zstd is not installed")
def test_the_least_recently_used_snapshots_go_past_the_cap(
        ctx: BuildContext, kernel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SnapshotStore(ctx)
    monkeypatch.setenv(CAP_VARIABLE, "1")  # 1 MiB
    made = []
    for n in range(2):
        made.append(publish(store, argv(kernel, memory=f"{n + 1}G"), os.urandom(400_000)))
        time.sleep(0.01)
    key = snapshot_key(system_qemu({}, ctx), argv(kernel, memory="1G"), "qemu-virt",
                       store.digests)
    assert store.find(key) is not None  # the first one is used again: now the newest
    with capture_logs() as logs:
        made.append(publish(store, argv(kernel, memory="3G"), os.urandom(400_000)))
    assert [p.exists() for p in made] == [True, False, True]
    assert logs[-1]["event"] == "removed least recently used snapshots"


def test_qmp_errors_are_one_sentence(ctx: BuildContext, tmp_path: Path) -> None:
    """A real QEMU (held at its first instruction with ``-S``, nothing boots)."""
    qemu = system_qemu({}, ctx)
    sock = tmp_path / "qmp"
    process = subprocess.Popen([*qemu.base_args(), "-machine", "virt", "-display", "none",
                                "-nodefaults", "-S", *qmp_args(sock)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Qmp(sock, time.monotonic() + 30) as qmp:
            assert qmp.status(time.monotonic() + 10) == "prelaunch"
            with pytest.raises(QmpError, match="^QMP no-such-command: .*no-such-command"):
                qmp.command("no-such-command", deadline=time.monotonic() + 10)
            qmp.command("quit", deadline=time.monotonic() + 10)
            with pytest.raises(QmpError, match="closed the QMP connection|connection lost"):
                qmp.status(time.monotonic() + 10)
    finally:
        process.kill()
        process.wait()
    with pytest.raises(QmpError, match="did not open in time"):
        Qmp(tmp_path / "absent", time.monotonic() + 0.2)


def test_a_restore_sends_the_seed_and_the_time_not_the_refresh_program() -> None:
    """The guest's init reads a request a byte at a time (~0.1 ms a byte under TCG): the
    program goes in once, before the save; a restore sends 80 bytes and runs it."""
    assert install_script().count("\\") > 1000  # the program, as printf escapes
    restored = fresh_script((), restored=True)
    assert restored.count("\\") == 80 and f"| {PROGRAM} " in restored
    assert fresh_script((), restored=True) != restored  # fresh host randomness each time
    assert fresh_script((), restored=False) == ""  # a booted guest is fresh already
    share = Share(Path("/srv/x"), "/mnt/my dir", True, "rvforge0")
    booted = fresh_script((share,), restored=False)
    assert PROGRAM not in booted
    assert "mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro rvforge0 " \
           "'/mnt/my dir'" in booted


def test_a_folded_refresh_passes_on_only_what_follows_its_marker() -> None:
    """``run`` refreshes a restored guest in the command's own request: what precedes the
    refresh's marker is the refresh's; stderr held until the marker is the command's."""
    out, err = bytearray(), bytearray()
    gate = _RefreshGate(b"RVFORGE-FRESH-1234\n", out.extend, err.extend)
    gate.err(b"early command stderr\n")
    gate.out(b"RVFORGE-FRE")
    assert gate.opened is None and not out and not err
    gate.out(b"SH-1234\ncommand out\n")
    gate.out(b"more\n")
    gate.err(b"late\n")
    assert gate.opened is not None
    assert (bytes(out), bytes(err)) == (b"command out\nmore\n", b"early command stderr\nlate\n")

    failed = _RefreshGate(b"RVFORGE-FRESH-1234\n", out.extend, err.extend)
    failed.out(b"rvforge-fresh: setting the clock failed\n")
    failed.err(b"rvforge: cannot refresh the restored guest\n")
    assert failed.opened is None and b"clock" in failed.held_out
