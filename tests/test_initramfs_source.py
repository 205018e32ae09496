"""An existing initramfs as the base: ``--source`` takes cpio archives (newc and crc,
compressed, concatenated as the kernel reads them) with the tarball's escape and ownership
checks; and a valid multi-frame ``.tar.zst`` whose first frame is tiny is a tarball."""

from __future__ import annotations

import gzip
import io
import lzma
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from rvforge import Tree
from rvforge.cli import app
from rvforge.formats.cpio import write_cpio
from rvforge.testing import assert_one_line_error


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, ["--quiet", *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def cpio_bytes(tree: Tree) -> bytes:
    out = io.BytesIO()
    write_cpio(tree, out, epoch=0)
    return out.getvalue()


def base_tree() -> Tree:
    tree = Tree()
    tree.add_dir("/etc")
    tree.add_file("/etc/motd", b"hello\n", mode=0o640, uid=0, gid=42)
    tree.add_dir("/home")
    tree.add_dir("/home/user", uid=1000, gid=1000)
    return tree


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return {m.name.removeprefix("./"): m for m in archive.getmembers()}


@pytest.mark.parametrize("layout", ["newc", "newc.gz", "crc", "concatenated"])
def test_a_cpio_archive_is_a_source_with_its_owners_kept(tmp_path: Path, layout: str
                                                          ) -> None:
    data = cpio_bytes(base_tree())
    if layout == "newc.gz":
        data = gzip.compress(data)
    elif layout == "crc":
        data = data.replace(b"070701", b"070702")  # checksum field 0: readers may ignore it
    elif layout == "concatenated":  # an uncompressed one first, as early microcode is
        extra = Tree()
        extra.add_dir("/opt")
        extra.add_file("/opt/late", b"first archive\n")
        data = cpio_bytes(extra) + b"\0" * 512 + gzip.compress(data)
    source = tmp_path / "initramfs.img"
    source.write_bytes(data)
    out = tmp_path / "out" / "image.tar"
    result = invoke("build", "--provider", "local", "--source", str(source), "-o", str(out),
                    "--no-audit", "--isa", "rv64gc")
    assert result.returncode == 0, result.stderr
    found = members(out)
    assert (found["etc/motd"].mode, found["etc/motd"].gid) == (0o640, 42)
    assert (found["home/user"].uid, found["home/user"].gid) == (1000, 1000)
    assert ("opt/late" in found) == (layout == "concatenated")


@pytest.mark.parametrize("name, message", [
    ("../escaped", "'..'"),
    ("/etc/absolute", "has an absolute name"),
])
def test_a_cpio_source_that_would_escape_is_refused(tmp_path: Path, name: str,
                                                    message: str) -> None:
    data = cpio_bytes(base_tree()).replace(b"etc/motd\0", name.encode()[:8] + b"\0", 1)
    source = tmp_path / "initramfs.cpio"
    source.write_bytes(data)
    out = tmp_path / "out"
    for command in (["build", "--provider", "local", "--source", str(source), "-o",
                     str(out / "x.tar"), "--no-audit", "--isa", "rv64gc"],
                    ["audit", str(source), "--isa", "rv64gc"],
                    ["inspect", str(source)]):
        result = invoke(*command)
        assert_one_line_error(result, 2, message)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_multi_frame_tar_zst_with_a_tiny_first_frame_is_a_tarball(tmp_path: Path) -> None:
    """One ``read`` of the decompressor returned the first frame alone (< 512 bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("etc/motd")
        info.size = 6
        archive.addfile(info, io.BytesIO(b"hello\n"))
    data = buffer.getvalue()
    compressor = zstandard.ZstdCompressor()
    source = tmp_path / "rootfs.tar.zst"
    source.write_bytes(compressor.compress(data[:100]) + compressor.compress(data[100:]))
    out = tmp_path / "out" / "image.tar"
    result = invoke("build", "--provider", "local", "--source", str(source), "-o", str(out),
                    "--no-audit", "--isa", "rv64gc")
    assert result.returncode == 0, result.stderr
    assert "etc/motd" in members(out)


def test_a_sparse_member_declaring_64_gib_is_refused_before_it_fills_tmpdir(
        tmp_path: Path) -> None:
    """GNU tar's sparse member: 10 kB of archive, 64 GiB of zeros once unpacked."""
    big = tmp_path / "big"
    with open(big, "wb") as out:
        out.truncate(64 << 30)
    source = tmp_path / "sparse.tar"
    subprocess.run(["tar", "-S", "-cf", str(source), "-C", str(tmp_path), "big"], check=True)
    big.unlink()
    started = time.monotonic()
    result = invoke("build", "--provider", "local", "--source", str(source), "-o",
                    str(tmp_path / "out" / "x.tar"), "--no-audit", "--isa", "rv64gc")
    assert time.monotonic() - started < 30
    assert_one_line_error(result, 2, "member 'big': the archive expands to more than 1100 "
                                     "times its size")


def test_a_compression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.setattr("rvforge.formats.tar.MIN_BUDGET", 1 << 20)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("zeros")
        info.size = 64 << 20
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    source = tmp_path / "bomb.tar.xz"
    source.write_bytes(lzma.compress(buffer.getvalue()))
    assert source.stat().st_size * 1100 < 64 << 20
    result = invoke("build", "--provider", "local", "--source", str(source), "-o",
                    str(tmp_path / "out" / "x.tar"), "--no-audit", "--isa", "rv64gc")
    assert_one_line_error(result, 2, "member 'zeros': the archive expands to more than")
