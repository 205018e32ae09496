"""Zip archives and Python wheels, read in memory for the audit.

Before anything is inflated the central directory is checked: every name (no ``..``, no
absolute or drive names, no duplicates), each member's declared size and ratio
(:data:`~rvforge.formats.packages.MAX_RATIO`) and that no two members share compressed
bytes (the overlapping-entry zip bomb). Members are then read once, streaming: a wheel's
against its ``*.dist-info/RECORD`` (PEP 376/427: every file listed, with the SHA-256 and
size it has; ``RECORD`` itself and its signatures excepted), ELF members kept.

A wheel's platform tags come from its file name (PEP 427:
``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``, platform tags joined by
``.``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
import zlib
from pathlib import Path
from typing import IO

from rvforge.errors import InputError
from rvforge.formats.package import CHUNK, MAX_RATIO, MAX_UNPACKED, MemberSink, Package
from rvforge.numbers import parse_decimal

__all__ = ["read_zip", "wheel_platforms"]

RECORD_EXEMPT = ("RECORD", "RECORD.jws", "RECORD.p7s")
"""Files of ``.dist-info`` that RECORD does not list with a hash (PEP 376/427)."""
_LOCAL_HEADER = 30
"""Bytes of a zip local file header before its name and extra field."""
MAX_RECORD = 64 << 20
"""Largest RECORD read (a wheel of 100,000 files has a ~15 MiB one)."""


def wheel_platforms(path: Path) -> tuple[str, ...]:
    """The platform tags in a wheel's file name (``()`` when it is not a wheel name)."""
    parts = path.name.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        return ()
    return tuple(parts[-1].split("."))


def read_zip(path: Path, *, wheel: bool) -> Package:
    """Read the zip archive ``path`` (a wheel when ``wheel``: its RECORD is checked)."""
    package = Package(path, "wheel" if wheel else "zip",
                      platforms=wheel_platforms(path) if wheel else ())
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _check_directory(path, infos)
            record = _record(path, archive, infos) if wheel else None
            sink = MemberSink(package)
            for info in infos:
                if info.is_dir():
                    sink.name(info.filename)
                    continue
                _read_member(path, archive, info, sink, record)
            if record:
                missing = sorted(record)[0]
                raise InputError(f"{path}: RECORD lists {missing!r}, which the wheel does not "
                                 "hold: it was altered after it was built; rebuild or "
                                 "download it again")
    except zipfile.BadZipFile as error:
        raise InputError(f"{path}: not a zip archive, or truncated or corrupt ({error})"
                         ) from None
    # zipfile: NotImplementedError for an unknown compression method, RuntimeError for an
    # encrypted member
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise InputError(f"{path}: cannot read a member ({error}); the archive is corrupt "
                         "or uses a compression rvforge cannot read") from None
    return package


def _check_directory(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Names, sizes and ranges of the central directory, before anything is inflated."""
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        who = f"{path}: member {name!r}"
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise InputError(f"{who} has an absolute name; refusing the archive")
        if ".." in name.replace("\\", "/").split("/"):
            raise InputError(f"{who}: path contains '..'; refusing a member that climbs out "
                             "of the archive")
        if name in seen:
            raise InputError(f"{who} appears twice; refusing an ambiguous archive")
        seen.add(name)
        declared += info.file_size
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > CHUNK:
            raise InputError(f"{who} claims to inflate {info.compress_size} bytes to "
                             f"{info.file_size}: a zip bomb; refusing the archive")
    if declared > MAX_UNPACKED:
        raise InputError(f"{path}: its members unpack to {declared >> 30} GiB, more than "
                         f"{MAX_UNPACKED >> 30} GiB: a zip bomb or not a real package")
    spans = sorted(((info.header_offset, info) for info in infos), key=lambda s: s[0])
    for (start, info), (following, other) in zip(spans, spans[1:], strict=False):
        end = start + _LOCAL_HEADER + len(info.orig_filename.encode()) + info.compress_size
        if end > following:
            raise InputError(f"{path}: members {info.filename!r} and {other.filename!r} "
                             "overlap (a zip bomb); refusing the archive")



def _record(path: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]
            ) -> dict[str, tuple[str, int | None]]:
    """A wheel's RECORD: member name → (``sha256=…`` digest, size)."""
    records = [i for i in infos if i.filename.count("/") == 1
               and i.filename.split("/")[0].endswith(".dist-info")
               and i.filename.endswith("/RECORD")]
    if len(records) != 1:
        raise InputError(f"{path}: not a wheel (it has {len(records)} .dist-info/RECORD "
                         "files, a wheel has one); audit it as a zip with another name")
    with archive.open(records[0]) as stream:
        text = stream.read(MAX_RECORD + 1)
    if len(text) > MAX_RECORD:
        raise InputError(f"{path}: its RECORD is larger than {MAX_RECORD >> 20} MiB")
    rows: dict[str, tuple[str, int | None]] = {}
    try:
        for row in csv.reader(io.StringIO(text.decode("utf-8"))):
            if not row:
                continue
            name, digest, size = (row + ["", ""])[:3]
            rows[name] = (digest, parse_decimal(size, f"{path}: RECORD size of {name!r}")
                          if size else None)
    except (UnicodeDecodeError, ValueError, csv.Error) as error:
        raise InputError(f"{path}: its RECORD cannot be read ({error})") from None
    dist_info = records[0].filename.rsplit("/", 1)[0]
    for exempt in RECORD_EXEMPT:
        rows.pop(f"{dist_info}/{exempt}", None)
    return rows



def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                 sink: MemberSink, record: dict[str, tuple[str, int | None]] | None) -> None:
    """Read one member into ``sink``, checking it against ``record`` (a wheel's)."""
    name = info.filename
    exempt = record is not None and name.rsplit("/", 1)[-1] in RECORD_EXEMPT and \
        name.count("/") == 1 and name.split("/")[0].endswith(".dist-info")
    mode = (info.external_attr >> 16) & 0o7777
    with archive.open(info) as raw:
        stream = _Hashing(raw)
        sink.file(name, stream, mode)  # type: ignore[arg-type]
    if record is None or exempt:
        return
    if name not in record:
        raise InputError(f"{path}: {name!r} is not in its RECORD: the wheel was altered "
                         "after it was built; rebuild or download it again")
    digest, size = record.pop(name)
    algorithm, _, expected = digest.partition("=")
    if algorithm != "sha256":
        raise InputError(f"{path}: RECORD gives {name!r} no sha256 digest ({digest!r})")
    actual = base64.urlsafe_b64encode(stream.digest.digest()).rstrip(b"=").decode()
    if actual != expected or (size is not None and size != stream.size):
        raise InputError(f"{path}: RECORD says {name!r} has sha256={expected} ({size} bytes) "
                         f"but it has sha256={actual} ({stream.size} bytes): the wheel was "
                         "altered after it was built; rebuild or download it again")


class _Hashing:
    """A read-only stream that hashes (SHA-256) and counts what is read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data
