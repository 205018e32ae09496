"""Compression formats rvforge reads and writes: detection by magic, streaming readers and
deterministic streaming writers.

Writers (:func:`open_compressed`) produce output the Linux kernel's initramfs unpacker
accepts, and the same bytes for the same input:

* ``gz``: one gzip member (mtime 0, no file name), compressed at level 9 on every core
  with zlib-ng, pigz-style: independent 1 MiB blocks, each primed with the previous
  block's last 32 KiB as a preset dictionary and ended with a sync flush, so the output
  is as small as a single-threaded ``gzip -9`` and a plain gunzip reads it.
* ``zst``: one zstd frame (level 3, with checksum), compressed on every core.
* ``xz``: xz with a CRC32 check (the kernel's xz decoder does not check CRC64), preset 6.
* ``None``: no compression.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["DECOMPRESS_ERRORS", "compression_of", "decompress_stream", "detect",
           "is_corrupt_stream_error", "open_compressed", "open_decompressed"]

MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gz"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"BZh", "bz2"),
)


def detect(head: bytes) -> str | None:
    """The compression of a stream starting with ``head`` (``gz``, ``xz``, ``zst``,
    ``bz2``), or ``None`` for uncompressed data."""
    for magic, name in MAGICS:
        if head.startswith(magic):
            return name
    return None


def open_decompressed(path: Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing it on the fly whatever its compression."""
    raw = open(path, "rb")
    try:
        kind = detect(raw.read(6))
        raw.seek(0)
        return decompress_stream(raw, kind)
    except BaseException:
        raw.close()
        raise


def decompress_stream(raw: BinaryIO, kind: str | None) -> BinaryIO:
    """Wrap ``raw`` in a streaming decompressor for ``kind`` (``None``: return ``raw``)."""
    if kind == "gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    if kind == "zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return raw


DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)
"""What a truncated or corrupt compressed stream raises while being read (zstandard's
``ZstdError`` derives from ``Exception`` and is added by :func:`is_corrupt_stream_error`)."""


def is_corrupt_stream_error(error: BaseException) -> bool:
    """True when ``error`` means the compressed data is truncated or corrupt."""
    if isinstance(error, DECOMPRESS_ERRORS):
        return True
    return type(error).__name__ == "ZstdError"


WRITERS = ("gz", "zst", "xz")
"""Compressions :func:`open_compressed` writes (besides ``None``, uncompressed)."""

GZIP_LEVEL = 9
GZIP_BLOCK = 1 << 20
ZSTD_LEVEL = 3
ZSTD_JOB = 4 << 20
"""Bytes per zstd worker job: half the default's memory (~30 MB less), +0.02% output."""
XZ_PRESET = 6


def compression_of(fmt: str) -> str | None:
    """The compression a packer format names: ``cpio.gz`` → ``gz``, ``tar`` → ``None``."""
    last = fmt.rsplit(".", 1)[-1]
    return last if last in WRITERS else None


@contextmanager
def open_compressed(path: Path, kind: str | None) -> Iterator[BinaryIO]:
    """Create ``path`` and yield a binary stream that compresses what is written to it.

    The compressed stream is finished and the file closed when the block ends normally;
    on an exception the compressor is shut down and the file closed (the caller removes
    it).
    """
    if kind is not None and kind not in WRITERS:
        raise ValueError(f"unknown compression {kind!r} (known: {', '.join(WRITERS)})")
    with open(path, "wb") as raw:
        if kind is None:
            yield raw
            return
        writer = _compressor(raw, kind)
        try:
            yield writer
        except BaseException:
            _abandon(writer)
            raise
        writer.close()


def _compressor(raw: BinaryIO, kind: str) -> BinaryIO:
    if kind == "gz":
        from zlib_ng import gzip_ng_threaded

        return gzip_ng_threaded.open(
            raw, "wb", compresslevel=GZIP_LEVEL, threads=-1, block_size=GZIP_BLOCK
        )
    if kind == "zst":
        import zstandard

        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, threads=-1, write_checksum=True, job_size=ZSTD_JOB)
        compressor = zstandard.ZstdCompressor(compression_params=params)
        return compressor.stream_writer(raw, closefd=False)
    return lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ,  # type: ignore[return-value]
                         check=lzma.CHECK_CRC32, preset=XZ_PRESET)


def _abandon(writer: BinaryIO) -> None:
    """Close a compressor after a failure (ending its threads); its own errors are moot."""
    with contextlib.suppress(Exception):  # the original error is what matters
        writer.close()


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end: one ``read`` of a decompressor
    may return less (zstd returns one frame's worth, and a frame may be tiny)."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
