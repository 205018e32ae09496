"""Concatenated gzip streams, the container of ``APKINDEX.tar.gz`` and ``.apk`` files.

apk signs and checksums the *compressed* bytes of individual streams, so their exact
boundaries matter: :func:`member_spans` finds them by inflating each stream to its end (a
gzip member records no compressed length), with bounded memory.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from rvforge import InputError

CHUNK = 1 << 16
INFLATE_CAP = 256 << 20
"""Most bytes one control, signature or index stream may inflate to (a gzip bomb's bound)."""


def member_spans(stream: BinaryIO, count: int, *, label: str) -> list[tuple[int, int]]:
    """``(start, end)`` byte offsets of the first ``count`` gzip members of ``stream``,
    counted from its current position."""
    spans: list[tuple[int, int]] = []
    position = 0
    pending = b""
    for index in range(count):
        inflater = zlib.decompressobj(wbits=31)
        fed = 0
        data, pending = pending, b""
        while not inflater.eof:
            if not data:
                data = stream.read(CHUNK)
                if not data:
                    raise InputError(f"{label}: gzip stream {index + 1} is truncated")
            fed += len(data)
            try:
                inflater.decompress(data, CHUNK)
                while inflater.unconsumed_tail and not inflater.eof:
                    inflater.decompress(inflater.unconsumed_tail, CHUNK)
            except zlib.error as error:
                raise InputError(f"{label}: gzip stream {index + 1} is corrupt "
                                 f"({error})") from None
            data = b""
        pending = inflater.unused_data
        end = position + fed - len(pending)
        spans.append((position, end))
        position = end
    return spans


def split_members(data: bytes, count: int, *, label: str) -> tuple[list[bytes], bytes]:
    """The raw bytes of the first ``count`` gzip members of ``data``, and what follows."""
    spans = member_spans(io.BytesIO(data), count, label=label)
    return [data[start:end] for start, end in spans], data[spans[-1][1]:]


def inflate(member: bytes, *, label: str, limit: int = INFLATE_CAP) -> bytes:
    """Decompress one whole gzip member of at most ``limit`` bytes inflated."""
    try:
        inflater = zlib.decompressobj(wbits=31)
        out = inflater.decompress(member, limit + 1)
    except zlib.error as error:
        raise InputError(f"{label}: corrupt gzip stream ({error})") from None
    if len(out) > limit:
        raise InputError(f"{label}: inflates to more than {limit} bytes; refusing it "
                         "(a gzip bomb, or not an apk stream)")
    if not inflater.eof:
        raise InputError(f"{label}: truncated gzip stream")
    return out
