"""The unpacked layout of a ``.deb`` (one decompressed ``data.tar``, files as windows on it),
on packages built here by ``dpkg-deb``."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from rvforge import BuildContext, EntryKind, HostFile, InputError, Tree, build_registry

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.deb import (
    DATA_TAR,
    UnpackedDeb,
    add_to_tree,
    ar_members,
    unpack_deb,
)

CONTROL = """Package: hello-rv
Version: 1.0-1
Architecture: riscv64
Maintainer: rvforge tests <tests@invalid>
Description: a package built by the tests
"""


def build_deb(tmp_path: Path, compression: str = "xz") -> Path:
    """A real ``.deb``: a file, an empty file, a big file, a symlink and a directory."""
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(CONTROL)
    (root / "DEBIAN/postinst").write_text("#!/bin/sh\nexit 0\n")
    (root / "DEBIAN/postinst").chmod(0o755)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/hello").write_bytes(b"#!/bin/sh\necho hello\n")
    (root / "usr/bin/hello").chmod(0o755)
    (root / "usr/share/hello").mkdir(parents=True)
    (root / "usr/share/hello/empty").write_bytes(b"")
    (root / "usr/share/hello/big").write_bytes(bytes(range(256)) * 4099)
    (root / "usr/bin/hi").symlink_to("hello")
    deb = tmp_path / "hello-rv_1.0-1_riscv64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", root,
                    deb], check=True, capture_output=True)
    return deb


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_unpacked_tree_has_every_member_with_its_bytes(tmp_path: Path,
                                                       compression: str) -> None:
    deb = build_deb(tmp_path, compression)
    unpacked = unpack_deb(deb, tmp_path / "unpacked")
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == [
        "control", DATA_TAR, "manifest.json"]  # three entries, not one file per member
    tree = Tree()
    add_to_tree(UnpackedDeb.load(unpacked.root), tree)
    source = tmp_path / "pkg"
    for name in ("usr/bin/hello", "usr/share/hello/empty", "usr/share/hello/big"):
        entry = tree[f"/{name}"]
        assert entry.kind is EntryKind.FILE and (entry.uid, entry.gid) == (0, 0)
        assert tree.read_bytes(entry.path) == (source / name).read_bytes()
    assert tree["/usr/bin/hello"].mode == 0o755
    assert tree["/usr/bin/hi"].kind is EntryKind.SYMLINK and tree["/usr/bin/hi"].target == "hello"
    assert unpacked.control["postinst"].startswith(b"#!/bin/sh")
    assert "/usr/share/hello/big" in unpacked.listed()


def test_member_data_is_a_seekable_window(tmp_path: Path) -> None:
    deb = build_deb(tmp_path)
    tree = Tree()
    unpacked = unpack_deb(deb, tmp_path / "unpacked")
    add_to_tree(unpacked, tree)
    content = tree["/usr/share/hello/big"].content
    assert isinstance(content, HostFile) and content.size == 256 * 4099
    assert content.offset and content.path == unpacked.root / DATA_TAR
    expected = bytes(range(256)) * 4099
    with content.open() as stream:
        assert stream.read(10) == expected[:10]
        stream.seek(-5, io.SEEK_END)
        assert stream.read() == expected[-5:] and stream.read() == b""
        stream.seek(1000)
        assert stream.tell() == 1000 and stream.read(3) == expected[1000:1003]
        with pytest.raises((AttributeError, io.UnsupportedOperation)):
            stream.fileno()  # readers cannot reach past the window through the descriptor


def test_truncated_data_tar_is_refused(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "none")
    data = next(m for m in ar_members(deb).values() if m.name.startswith("data.tar"))
    raw = bytearray(deb.read_bytes())
    # cut data.tar in the middle of the 1 MB file; the ar header gets the new size, so
    # only the tar shows the damage
    cut = data.size // 2
    del raw[data.offset + cut:data.offset + data.size]
    header = data.offset - 60
    raw[header + 48:header + 58] = str(cut).ljust(10).encode()
    broken = tmp_path / "broken.deb"
    broken.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"broken\.deb: .*(truncated|corrupt)"):
        unpack_deb(broken, tmp_path / "unpacked")


def test_corrupt_compressed_data_is_refused(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "xz")
    data = next(m for m in ar_members(deb).values() if m.name.startswith("data.tar"))
    raw = bytearray(deb.read_bytes())
    middle = data.offset + data.size // 2
    raw[middle:middle + 16] = bytes(16)
    broken = tmp_path / "broken.deb"
    broken.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"broken\.deb: corrupt data\.tar\.xz"):
        unpack_deb(broken, tmp_path / "unpacked")


def test_a_rewritten_data_tar_fails_the_build_instead_of_packing_other_bytes(
        tmp_path: Path) -> None:
    tree = Tree()
    unpacked = unpack_deb(build_deb(tmp_path), tmp_path / "unpacked")
    add_to_tree(unpacked, tree)
    data = unpacked.root / DATA_TAR
    data.write_bytes(data.read_bytes())  # same bytes, but a new ctime
    with pytest.raises(InputError, match="changed during the build"):
        tree.read_bytes("/usr/bin/hello")


def test_an_unpacked_cache_of_the_old_layout_is_removed(tmp_path: Path) -> None:
    old = tmp_path / "cache" / "debian" / "unpacked" / "0123abcd"
    (old / "data").mkdir(parents=True)
    (old / "data" / "0").write_bytes(b"a member of layout 1")
    with BuildContext(build_registry(), cache_dir=tmp_path / "cache") as ctx:
        assert DebianArchive(ctx, mirror=str(tmp_path / "mirror")).unpack_many([]) == []
    assert not old.parent.exists()
    assert (tmp_path / "cache" / "debian").is_dir()
