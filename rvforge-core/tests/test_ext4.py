"""The ext4 packer: a real image from the Alpine tree, checked with e2fsprogs itself."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from rvforge import BuildContext, EntryKind, ExitCode, ToolMissingError, Tree
from rvforge.formats import ext4
from rvforge.formats.entries import with_device_nodes
from rvforge.formats.tar import read_tarball
from rvforge.pipeline import Step, pack

EPOCH = 1_700_000_000


@pytest.fixture(scope="module")
def image(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Tree, Path]:
    """The Alpine tree plus hardlinks, a big uid, a block device and a fifo, as ext4."""
    from rvforge.plugins import get_plugin_manager
    from rvforge.registry import Registry

    base = tmp_path_factory.mktemp("ext4")
    tree = read_tarball(alpine_tarball, base / "alpine")
    tree.add_hardlink("/bin/a-busybox-link", "/bin/busybox")
    tree.add_file("/home/user/notes", b"hello", mode=0o600, uid=100_000, gid=100_001,
                  mtime=1_600_000_000)
    tree.add_file('/opt/a "quoted" name', b"q")
    tree.add_device("/dev/vda", EntryKind.BLOCK, 254, 0, mode=0o660, gid=6)
    tree.add_fifo("/run/initctl", mode=0o600)
    tree.add_dir("/tmp", mode=0o1777)
    with BuildContext(Registry(get_plugin_manager(load_entrypoints=False)),
                      cache_dir=base / "cache", scratch_dir=base / "scratch",
                      source_date_epoch=EPOCH) as ctx:
        artifact = pack(ctx.registry, tree, Step("ext4", None), "ext4", base / "root.ext4",
                        ctx)
        assert not any((base / "scratch").rglob("busybox"))  # staging copy removed
    assert artifact.kind == "disk"
    return tree, artifact.path


def debugfs(image: Path, request: str) -> str:
    return subprocess.run(["debugfs", "-R", request, str(image)], capture_output=True,
                          text=True, check=True).stdout


def stat_of(image: Path, path: str) -> dict[str, str]:
    quoted = path.replace('"', '""')  # libss quoting, as the packer's debugfs script
    text = debugfs(image, f'stat "{quoted}"')
    fields: dict[str, str] = {}
    for key, value in re.findall(r"(Inode|Type|Mode|User|Group|Links|Size):\s+"
                                 r"(\S+(?: special)?)", text):
        fields.setdefault(key, value)  # the first: a later "Fragment: ... Size:" is not it
    device = re.search(r"Device major/minor number: (\d+):(\d+)", text)
    if device:
        fields["rdev"] = f"{int(device[1])},{int(device[2])}"
    mtime = re.search(r"mtime: (0x[0-9a-f]+)", text)
    fields["mtime"] = str(int(mtime[1], 16)) if mtime else ""
    return fields


def test_e2fsck_finds_the_image_clean(image: tuple[Tree, Path]) -> None:
    result = subprocess.run(["e2fsck", "-fn", str(image[1])], check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_owners_and_modes_come_from_the_tree(image: tuple[Tree, Path]) -> None:
    _, path = image
    shadow = stat_of(path, "/etc/shadow")
    assert (shadow["User"], shadow["Group"], shadow["Mode"]) == ("0", "42", "0640")
    notes = stat_of(path, "/home/user/notes")
    assert (notes["User"], notes["Group"], notes["mtime"]) == ("100000", "100001",
                                                               "1600000000")
    assert stat_of(path, "/tmp")["Mode"] == "01777"
    assert stat_of(path, '/opt/a "quoted" name')["Size"] == "1"
    assert stat_of(path, "/")["User"] == "0"


def test_device_nodes_and_fifos_exist_without_root(image: tuple[Tree, Path]) -> None:
    _, path = image
    console = stat_of(path, "/dev/console")
    assert (console["Type"], console["rdev"], console["Mode"]) == (
        "character special", "5,1", "0600")
    assert stat_of(path, "/dev/null")["rdev"] == "1,3"
    vda = stat_of(path, "/dev/vda")
    assert (vda["Type"], vda["rdev"], vda["Group"]) == ("block special", "254,0", "6")
    assert stat_of(path, "/run/initctl")["Type"] == "FIFO"


def test_hardlinks_share_an_inode(image: tuple[Tree, Path]) -> None:
    _, path = image
    assert stat_of(path, "/bin/busybox")["Links"] == "2"
    assert stat_of(path, "/bin/busybox")["Inode"] == stat_of(path, "/bin/a-busybox-link")[
        "Inode"]


def test_every_file_and_link_matches_the_tree(image: tuple[Tree, Path], tmp_path: Path
                                             ) -> None:
    tree, path = image
    subprocess.run(["debugfs", "-R", f"rdump / {tmp_path}", str(path)], capture_output=True,
                   check=True)
    root = tmp_path
    for entry in tree:
        host = root / entry.path.lstrip("/")
        if entry.kind is EntryKind.FILE:
            assert hashlib.sha256(host.read_bytes()).hexdigest() == hashlib.sha256(
                tree.read_bytes(entry.path)).hexdigest(), entry.path
        elif entry.kind is EntryKind.SYMLINK:
            assert os.readlink(host) == entry.target, entry.path


def test_the_image_is_sized_from_the_tree(image: tuple[Tree, Path]) -> None:
    tree, path = image
    size = path.stat().st_size
    assert size == ext4.image_size(with_device_nodes(tree))  # the estimate was enough
    assert tree.stats().file_bytes < size < tree.stats().file_bytes * 2 + (80 << 20)
    free = re.search(r"Free blocks:\s+(\d+)", subprocess.run(
        ["dumpe2fs", "-h", str(path)], capture_output=True, text=True, check=True).stdout)
    assert free and int(free[1]) * 4096 > 16 << 20  # room for the guest to write


def test_missing_e2fsprogs_is_a_tool_error(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(ext4, "SBIN_PATH", "")
    with pytest.raises(ToolMissingError, match="apt-get install e2fsprogs") as caught:
        ext4.E2fsprogs.find()
    assert caught.value.exit_code == ExitCode.TOOL and int(ExitCode.TOOL) == 125
