"""Compression formats rvforge reads and writes: detection by magic, streaming readers."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path
from typing import BinaryIO

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

        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return raw


DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)
"""What a truncated or corrupt compressed stream raises while being read (zstandard's
``ZstdError`` derives from ``Exception`` and is added by :func:`is_corrupt_stream_error`)."""


def is_corrupt_stream_error(error: BaseException) -> bool:
    """True when ``error`` means the compressed data is truncated or corrupt."""
    if isinstance(error, DECOMPRESS_ERRORS):
        return True
    return type(error).__name__ == "ZstdError"
