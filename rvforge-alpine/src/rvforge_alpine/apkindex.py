"""``APKINDEX.tar.gz``: a repository's signed package index.

Two gzip streams back to back: a signature tar (``.SIGN.RSA.<key>``, over the raw bytes of
the second stream) and a tar holding ``DESCRIPTION`` and ``APKINDEX``. ``APKINDEX`` is
records of ``X:value`` lines separated by blank lines (see :mod:`rvforge_alpine.pkginfo`).
"""

from __future__ import annotations

import io
import tarfile

from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import InputError

from rvforge_alpine import gzstreams, signatures
from rvforge_alpine.pkginfo import PackageInfo, from_fields


def parse_records(text: str) -> list[list[tuple[str, str]]]:
    """Split ``X:value`` text into records (lists of key/value pairs, in order)."""
    records: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line:
            if current:
                records.append(current)
                current = []
            continue
        key, sep, value = line.partition(":")
        if not sep or len(key) != 1:
            raise InputError(f"not an 'X:value' line: {line[:80]!r}")
        current.append((key, value))
    if current:
        records.append(current)
    return records


def parse_index(text: str, *, label: str, repository: str = "") -> list[PackageInfo]:
    """Every package of an ``APKINDEX`` text."""
    try:
        records = parse_records(text)
    except InputError as error:
        raise InputError(f"{label}: {error}") from None
    return [from_fields(record, where=label, repository=repository) for record in records]


def read_index(data: bytes, keys: dict[str, rsa.RSAPublicKey], *, label: str,
               repository: str = "") -> list[PackageInfo]:
    """Verify ``APKINDEX.tar.gz`` bytes against ``keys`` and return its packages."""
    streams, rest = gzstreams.split_members(data, 2, label=label)
    if rest:
        raise InputError(f"{label}: unexpected data after the index stream")
    signature = signatures.read_signature(streams[0], label=label)
    signatures.verify(signature, streams[1], keys, label=label)
    payload = gzstreams.inflate(streams[1], label=label)
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r|") as archive:
            for member in archive:
                if member.name == "APKINDEX" and member.isreg():
                    stream = archive.extractfile(member)
                    text = stream.read().decode("utf-8") if stream else ""
                    return parse_index(text, label=label, repository=repository)
    except (tarfile.TarError, UnicodeDecodeError) as error:
        raise InputError(f"{label}: unreadable index ({error})") from None
    raise InputError(f"{label}: no APKINDEX member")
