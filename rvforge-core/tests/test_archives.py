"""Reading tarballs and directories into a Tree, against the real Alpine minirootfs."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from rvforge import EntryKind, HostFile, InputError, UnsafePathError
from rvforge.formats.directory import read_directory
from rvforge.formats.tar import is_tarball, read_tarball
from rvforge.tree import FileIdentity


def tar_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return {"/" + m.name.lstrip("./").rstrip("/"): m for m in archive.getmembers()
                if m.name not in (".", "./")}


def test_alpine_tarball_reads_entry_for_entry(alpine_tarball: Path, tmp_path: Path) -> None:
    tree = read_tarball(alpine_tarball, tmp_path / "store")
    members = tar_members(alpine_tarball)
    assert tree.stats().counts == {"dir": 97, "file": 84, "symlink": 334}  # "." is the root
    with tarfile.open(alpine_tarball) as archive:
        for path, member in members.items():
            entry = tree[path]
            assert entry.mode == member.mode & 0o7777, path
            assert (entry.uid, entry.gid, entry.mtime) == (member.uid, member.gid,
                                                           member.mtime), path
            if member.issym():
                assert entry.kind is EntryKind.SYMLINK and entry.target == member.linkname
            elif member.isreg():
                stream = archive.extractfile(member)
                assert stream is not None
                expected = hashlib.sha256(stream.read()).hexdigest()
                assert hashlib.sha256(tree.read_bytes(path)).hexdigest() == expected
    assert (tree["/etc/shadow"].uid, tree["/etc/shadow"].gid) == (0, 42)
    assert tree.read_text("/etc/alpine-release").strip() == "3.20.3"
    sh = tree.lookup("/bin/sh")
    assert sh is not None and sh.path == "/bin/busybox"


@pytest.mark.parametrize("compression", ["xz", "zst", "bz2", "none"])
def test_every_compression_reads_the_same(alpine_tarball: Path, tmp_path: Path,
                                          compression: str) -> None:
    import bz2
    import gzip
    import lzma

    raw = gzip.decompress(alpine_tarball.read_bytes())
    compressors: dict[str, Callable[[bytes], bytes]] = {
        "xz": lzma.compress, "bz2": bz2.compress, "none": lambda b: b,
        "zst": lambda b: zstandard.ZstdCompressor().compress(b)}
    packed = compressors[compression](raw)
    path = tmp_path / f"rootfs.tar.{compression}"
    path.write_bytes(packed)
    assert is_tarball(path)
    tree = read_tarball(path, tmp_path / "store")
    assert len(tree) == 515
    assert tree.read_text("/etc/apk/arch").strip() == "riscv64"


def test_hardlinks_and_devices_in_a_tarball(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = tarfile.TarInfo("bin/a")
        data.size, data.mode = 3, 0o4755
        archive.addfile(data, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("bin/b")
        link.type, link.linkname = tarfile.LNKTYPE, "bin/a"
        archive.addfile(link)
        console = tarfile.TarInfo("dev/console")
        console.type, console.devmajor, console.devminor = tarfile.CHRTYPE, 5, 1
        console.mode = 0o600
        archive.addfile(console)
    path = tmp_path / "x.tar"
    path.write_bytes(buffer.getvalue())
    tree = read_tarball(path, tmp_path / "store")
    assert tree["/bin/b"].kind is EntryKind.HARDLINK and tree["/bin/b"].target == "/bin/a"
    assert tree.read_bytes("/bin/b") == b"abc" and tree["/bin/a"].mode == 0o4755
    assert (tree["/dev/console"].kind, tree["/dev/console"].rdev) == (EntryKind.CHAR, (5, 1))


def test_member_data_shorter_than_its_header_is_truncation(tmp_path: Path,
                                                           alpine_tarball: Path) -> None:
    import gzip

    raw = gzip.decompress(alpine_tarball.read_bytes())
    path = tmp_path / "cut.tar"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="cut.tar"):
        read_tarball(path, tmp_path / "store")


def test_directory_source_never_follows_symlinks_and_owns_as_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("hi\n")
    os.chmod(root / "etc" / "motd", 0o640)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    os.symlink(outside, root / "escape")  # absolute link to the host
    os.mkfifo(root / "fifo")
    tree = read_directory(root)
    assert tree["/escape"].kind is EntryKind.SYMLINK
    assert "/escape/secret" not in tree  # not followed on the host
    assert tree.lookup("/escape/secret") is None  # and resolved inside the tree: dangling
    assert (tree["/etc/motd"].mode, tree["/etc/motd"].uid) == (0o640, 0)
    assert tree["/fifo"].kind is EntryKind.FIFO
    preserved = read_directory(root, owners="preserve")
    assert preserved["/etc/motd"].uid == os.stat(root / "etc" / "motd").st_uid


def test_directory_source_with_escaping_relative_link_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("../../../etc/shadow", root / "bad")
    with pytest.raises(UnsafePathError, match="escapes the root"):
        read_directory(root)


def test_directory_source_records_identities_and_has_no_depth_limit(tmp_path: Path) -> None:
    depth = 1200  # deeper than Python's recursion limit (os.walk, pathlib recurse)
    dirs = [str(tmp_path / "root")]
    dirs += [dirs[0] + "/d" * n for n in range(1, depth + 1)]
    for directory in dirs:
        os.mkdir(directory)
    leaf_host = dirs[-1] + "/leaf"
    Path(leaf_host).write_bytes(b"leaf")
    try:
        tree = read_directory(Path(dirs[0]))
        path = "/d" * depth + "/leaf"
        leaf = tree[path].content
        assert isinstance(leaf, HostFile)
        assert leaf.identity == FileIdentity.of(os.stat(leaf_host))
        assert tree.read_bytes(path) == b"leaf"
    finally:  # deepest first: pytest's clean-up recurses
        os.unlink(leaf_host)
        for directory in reversed(dirs):
            os.rmdir(directory)


def test_directory_source_with_an_unreadable_directory_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """os.walk skipped a directory it could not list; a root filesystem must not silently
    lose one (root can list anything, so the refusal is simulated)."""
    root = tmp_path / "root"
    (root / "secret").mkdir(parents=True)
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> Iterator[os.DirEntry[str]]:
        if str(path).endswith("secret"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError, match="secret: cannot read .Permission denied"):
        read_directory(root)
