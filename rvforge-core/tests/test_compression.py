"""The compression writers: readable by the standard tools, deterministic, and in the form
the kernel's initramfs decompressors accept (one gzip member, one zstd frame, xz CRC32)."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import threading
import zlib
from pathlib import Path

import pytest
import zstandard

from rvforge.formats.compression import compression_of, open_compressed, open_decompressed
from rvforge.formats.tar import read_tarball


@pytest.fixture(scope="module")
def elf_data(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """~6.5 MB of real riscv64 binaries and libraries: every file of the Alpine rootfs."""
    tree = read_tarball(alpine_tarball, tmp_path_factory.mktemp("alpine"))
    return b"".join(tree.read_bytes(e.path) for e in tree.walk() if e.kind.value == "file")


def write(path: Path, kind: str | None, data: bytes, piece: int = 300_007) -> bytes:
    with open_compressed(path, kind) as stream:
        for start in range(0, len(data), piece):
            stream.write(data[start:start + piece])
    return path.read_bytes()


@pytest.mark.parametrize("kind,tool", [("gz", "gzip"), ("zst", "zstd"), ("xz", "xz")])
def test_the_host_tools_decompress_it(elf_data: bytes, tmp_path: Path, kind: str,
                                      tool: str) -> None:
    path = tmp_path / f"data.{kind}"
    write(path, kind, elf_data)
    out = subprocess.run([tool, "-dc", str(path)], capture_output=True, check=True).stdout
    assert hashlib.sha256(out).digest() == hashlib.sha256(elf_data).digest()
    with open_decompressed(path) as stream:
        assert stream.read() == elf_data


def test_uncompressed_is_the_bytes_themselves(tmp_path: Path) -> None:
    assert write(tmp_path / "plain", None, b"abc" * 1000) == b"abc" * 1000


@pytest.mark.parametrize("kind", ["gz", "zst", "xz"])
def test_output_is_deterministic(elf_data: bytes, tmp_path: Path, kind: str) -> None:
    data = elf_data[:3 << 20]  # three gzip blocks; enough for xz to be slow enough
    first = write(tmp_path / "a", kind, data)
    assert write(tmp_path / "b", kind, data) == first


def test_gzip_is_one_member_without_name_or_time(elf_data: bytes, tmp_path: Path) -> None:
    packed = write(tmp_path / "data.gz", "gz", elf_data)
    assert packed[:4] == b"\x1f\x8b\x08\x00"  # deflate, no FNAME/FEXTRA/FCOMMENT flags
    assert packed[4:8] == b"\0\0\0\0"  # mtime 0
    # the kernel's gunzip reads one member; everything must be in the first
    inflate = zlib.decompressobj(31)
    assert inflate.decompress(packed) == elf_data
    assert inflate.eof and inflate.unused_data == b""


def test_gzip_is_no_bigger_than_gzip_9(elf_data: bytes, tmp_path: Path) -> None:
    ours = len(write(tmp_path / "data.gz", "gz", elf_data))
    theirs = len(subprocess.run(["gzip", "-9", "-n", "-c"], input=elf_data,
                                capture_output=True, check=True).stdout)
    assert ours <= theirs * 1.01, (ours, theirs)


def test_zstd_is_one_checksummed_frame(elf_data: bytes, tmp_path: Path) -> None:
    packed = write(tmp_path / "data.zst", "zst", elf_data)
    params = zstandard.get_frame_parameters(packed)
    assert params.has_checksum
    reader = zstandard.ZstdDecompressor().decompressobj()
    assert reader.decompress(packed) == elf_data
    assert reader.eof and reader.unused_data == b""


def test_xz_uses_the_crc32_check_the_kernel_supports(tmp_path: Path) -> None:
    path = tmp_path / "data.xz"
    write(path, "xz", b"riscv64 " * 10_000)
    info = subprocess.run(["xz", "--robot", "--list", str(path)], capture_output=True,
                          text=True, check=True).stdout
    assert "\tCRC32\t" in info


def test_a_failure_mid_stream_stops_the_compressor_threads(elf_data: bytes,
                                                           tmp_path: Path) -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"), \
            open_compressed(tmp_path / "x.gz", "gz") as stream:
        stream.write(elf_data)
        raise RuntimeError("boom")
    assert threading.active_count() == before


def test_formats_name_their_compression() -> None:
    assert [compression_of(f) for f in ("cpio", "cpio.gz", "cpio.zst", "tar.xz", "ext4")] \
        == [None, "gz", "zst", "xz", None]


def test_gzip_reads_back_with_python_gzip(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # > 4 blocks of 1 MiB: several threads' work
    path = tmp_path / "blocks.gz"
    write(path, "gz", data)
    assert gzip.decompress(path.read_bytes()) == data
