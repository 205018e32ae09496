"""``--configure vm`` without booting: the guest's shell commands that send back only what
configuring changed, run by the host's GNU find and tar (the same tools as in the Debian
guest) on a real directory; the merge of those changes into the tree; and the follower
of the VM's console that drives the progress bar. The whole VM run is tested by
test_boot.py."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from rvforge import EntryKind, InputError, Tree
from rvforge.formats.directory import read_directory
from rvforge.progress import Task

from rvforge_debootstrap import vm
from rvforge_debootstrap.firstboot import adopt_changes

UNPACKED = b"Package: a\nStatus: install ok unpacked\n"
INSTALLED = b"Package: a\nStatus: install ok installed\n"


def make_root(root: Path) -> None:
    """A small unpacked tree: files, a hardlink, a mount point with contents."""
    for directory in ("etc", "usr/bin", "var/lib/dpkg", "run/lock", "tmp", "proc"):
        (root / directory).mkdir(parents=True)
    (root / "etc/kept").write_text("kept\n")
    (root / "etc/old").write_text("old\n")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "usr/bin/a").write_bytes(b"\x7fELF a")
    os.link(root / "usr/bin/a", root / "usr/bin/b")
    (root / "run/lock/x").write_text("x\n")
    (root / "var/lib/dpkg/status").write_bytes(UNPACKED)


def mark_now(mark: Path, scratch: Path) -> None:
    """Run the VM's first hook (its mark moved to ``mark``), as /init would."""
    hook = scratch / "00-mark"
    hook.write_text(vm.MARK_SCRIPT.replace(vm.MARK, str(mark)))
    hook.chmod(0o755)
    subprocess.run([str(hook)], check=True)
    assert not hook.exists(), "the hook removes itself"


def configure(root: Path) -> None:
    """What dpkg --configure -a does, in small: edits, deletions, new entries."""
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/old").unlink()
    (root / "etc/new").write_text("new\n")
    (root / "etc/alt").symlink_to("/usr/bin/a")
    (root / "usr/bin/a").chmod(0o700)  # both names of the inode change
    (root / "var/lib/new").mkdir()
    (root / "var/lib/dpkg/status").write_bytes(INSTALLED)
    (root / "run/lock/x").unlink()  # under a mount point: the tree keeps it
    (root / "tmp/junk").write_text("junk\n")


def test_only_what_configuring_changed_goes_back_and_merges_into_the_tree(
        tmp_path: Path) -> None:
    root, scratch = tmp_path / "root", tmp_path / "scratch"
    scratch.mkdir()
    make_root(root)
    tree = read_directory(root)
    tree.add_file("/etc/kept", b"the tree's\n")  # unchanged: the tree's own stays
    time.sleep(3.1)  # the mark is whole seconds, 2 s early
    mark = scratch / "mark"
    mark_now(mark, scratch)
    assert time.time() - 4 < mark.stat().st_mtime < time.time() - 1
    configure(root)
    sent = tmp_path / "changes.tar"
    with open(sent, "wb") as out:
        subprocess.run(["sh", "-c", vm.send_changes(str(mark), str(scratch))], cwd=root,
                       stdout=out, check=True)
    with tarfile.open(sent) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert set(members) == {".", "./etc", "./etc/passwd", "./etc/new", "./etc/alt",
                            "./usr/bin/a", "./usr/bin/b", "./var/lib", "./var/lib/new",
                            "./var/lib/dpkg/status", "." + vm.LISTING}
    assert members["./usr/bin/b"].islnk() or members["./usr/bin/a"].islnk()

    store = tmp_path / "store"
    store.mkdir()
    tree.chmod("/var/lib/dpkg", 0o700)  # a parent of a sent entry, not sent: kept as it is
    adopt_changes(tree, sent, store, listing=vm.LISTING, kept=vm.KEPT, mode="vm",
                  hint="see here")
    assert not sent.exists()
    assert tree["/var/lib/dpkg"].mode == 0o700
    assert "/etc/old" not in tree and vm.LISTING not in tree
    assert tree.read_text("/etc/kept") == "the tree's\n"
    assert tree.read_text("/etc/passwd") == "root:x:0:0:root:/root:/bin/bash\n"
    assert tree.read_bytes("/var/lib/dpkg/status") == INSTALLED
    assert tree["/etc/alt"].kind is EntryKind.SYMLINK and tree["/etc/alt"].target == "/usr/bin/a"
    links = {tree["/usr/bin/a"].kind, tree["/usr/bin/b"].kind}
    assert links == {EntryKind.FILE, EntryKind.HARDLINK}
    assert tree.data_entry(tree["/usr/bin/b"]).mode == 0o700
    assert tree.read_bytes("/usr/bin/b") == b"\x7fELF a"
    assert tree.is_dir("/var/lib/new")
    assert tree.is_file("/run/lock/x"), "what is under a mount point stays"
    assert "/tmp/junk" not in tree
    kept_out = {"/run", "/run/lock", "/run/lock/x", "/tmp", "/tmp/junk", "/proc"}
    on_host = {p for p in read_directory(root).paths()} - kept_out - {vm.LISTING}
    assert set(tree.paths()) - kept_out == on_host


def changes_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("files, message", [
    ({"./var/lib/dpkg/status": INSTALLED},
     r"^--configure vm: the changes --configure vm made lack the list of paths; see here$"),
    ({"./var/lib/dpkg/status": UNPACKED, "." + vm.LISTING: b"./var/lib/dpkg/status\0"},
     r"^--configure vm: dpkg left 1 package\(s\) unconfigured \(a\); see here, or use "
     r"--configure first-boot$"),
])
def test_changes_are_refused_without_a_listing_or_with_packages_left_unconfigured(
        files: dict[str, bytes], message: str, tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/etc/old", b"old")
    tree.add_file("/var/lib/dpkg/status", UNPACKED)
    before = {e.path: e.kind for e in tree}
    store = tmp_path / "store"
    store.mkdir()
    sent = changes_tar(tmp_path / "changes.tar", files)
    with pytest.raises(InputError, match=message):
        adopt_changes(tree, sent, store, listing=vm.LISTING, kept=vm.KEPT, mode="vm",
                      hint="see here")
    assert {e.path: e.kind for e in tree} == before and tree.read_text("/etc/old") == "old"
    assert not store.exists() and not sent.exists()


def test_the_console_follower_counts_dpkg_setting_up_lines_as_they_are_written(
        tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    task = Task()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 30
        while task.done < count and time.monotonic() < deadline:
            time.sleep(0.05)

    with capture_logs() as logs:
        with vm.ConsoleFollower(console, task, structlog.get_logger()):
            time.sleep(2 * vm.POLL_SECONDS)  # QEMU has not created the log yet
            with open(console, "wb", buffering=0) as log:
                log.write(f"[    4.0] Run /init\r\n{vm.HOOK_STARTED}\r\n".encode())
                log.write(b"Setting up libc6:riscv64 (2.41-12) ...\r\nSetting up dp")
                wait_for(1)
                assert task.done == 1, "the partial line is not counted yet"
                log.write(b"kg (1.22.21) ...\r\nRVFORGE-READY\r\n")
                wait_for(2)
    assert task.done == 2
    events = [e["event"] for e in logs if e["log_level"] == "info"]
    assert events == ["VM booted; configuring packages",
                      "packages configured; sending the changes back"]
    lines = [e["line"] for e in logs if e["event"] == "vm console"]
    assert "Setting up dpkg (1.22.21) ..." in lines and not any("\r" in x for x in lines)


def test_the_follower_thread_ends_with_its_block(tmp_path: Path) -> None:
    with vm.ConsoleFollower(tmp_path / "never-written.log", Task(),
                            structlog.get_logger()):
        pass
    assert not [t for t in threading.enumerate() if t.name == "vm-console"]
