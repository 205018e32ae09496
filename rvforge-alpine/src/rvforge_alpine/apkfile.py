"""``.apk`` package files (apk v2): verification and extraction into a Tree.

An ``.apk`` is three gzip streams that together form one tar: the signature
(``.SIGN.RSA.<key>`` over the compressed control stream), the control stream
(``.PKGINFO`` and install scripts such as ``.post-install``) and the data stream (the
files). The chain of trust is apk's: the index's ``C:`` checksum is the SHA-1 of the
compressed control stream, the control stream is signed, and ``.PKGINFO``'s ``datahash``
is the SHA-256 of the compressed data stream. Each data member's
``APK-TOOLS.checksum.SHA1`` PAX header is checked against its bytes as they are stored.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import ChecksumMismatchError, EntryKind, HostFile, InputError, Tree
from rvforge.formats.tar import add_tar_member

from rvforge_alpine import gzstreams, signatures
from rvforge_alpine.installed_db import InstalledFile
from rvforge_alpine.pkginfo import PackageInfo, parse_pkginfo

SCRIPT_NAMES = (".pre-install", ".post-install", ".pre-upgrade", ".post-upgrade",
                ".pre-deinstall", ".post-deinstall", ".trigger")
PAX_SHA1 = "APK-TOOLS.checksum.SHA1"


def apk_checksum(data: bytes) -> str:
    """apk's ``Q1`` checksum notation: ``Q1`` + base64 of the SHA-1 of ``data``."""
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()


@dataclass
class ApkFile:
    """A verified ``.apk``: its metadata, scripts and where its data stream starts.

    :param info: from ``.PKGINFO``, with ``checksum`` and ``size`` filled in.
    :param scripts: install scripts by name (``.post-install`` → bytes).
    :param triggers: the directories a ``.trigger`` script watches (``triggers =``).
    """

    path: Path
    info: PackageInfo
    scripts: dict[str, bytes] = field(default_factory=dict)
    triggers: list[str] = field(default_factory=list)
    data_offset: int = 0


def open_apk(path: Path, keys: dict[str, rsa.RSAPublicKey], *, expected_checksum: str,
             label: str) -> ApkFile:
    """Verify the ``.apk`` at ``path`` and read its control stream.

    :param expected_checksum: the index's ``C:`` value for this package.
    :raises ChecksumMismatchError: the control stream is not the one the index names.
    :raises InputError: bad signature, bad data hash, malformed package.
    """
    with open(path, "rb") as stream:
        spans = gzstreams.member_spans(stream, 2, label=label)
        stream.seek(0)
        signature_bytes = stream.read(spans[0][1])
        control = stream.read(spans[1][1] - spans[1][0])
        data_hash = hashlib.sha256()
        for block in iter(lambda: stream.read(1 << 20), b""):
            data_hash.update(block)
    checksum = apk_checksum(control)
    if checksum != expected_checksum:
        raise ChecksumMismatchError(f"{label} (control stream)", "sha1 (C:)",
                                    expected_checksum, checksum)
    signature = signatures.read_signature(signature_bytes, label=label)
    signatures.verify(signature, control, keys, label=label)
    pkginfo, scripts = _read_control(control, label)
    info, raw = parse_pkginfo(pkginfo, where=f"{label}: .PKGINFO")
    wanted = (raw.get("datahash") or [""])[0]
    if not wanted:
        raise InputError(f"{label}: .PKGINFO has no datahash; the data cannot be verified")
    if data_hash.hexdigest() != wanted:
        raise ChecksumMismatchError(f"{label} (data stream)", "sha256 (datahash)", wanted,
                                    data_hash.hexdigest())
    info.checksum = checksum
    info.size = path.stat().st_size
    triggers = " ".join(raw.get("triggers", [])).split()
    return ApkFile(path, info, scripts, triggers, spans[1][1])


def _read_control(control: bytes, label: str) -> tuple[str, dict[str, bytes]]:
    data = gzstreams.inflate(control, label=f"{label}: control stream")
    pkginfo: str | None = None
    scripts: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as archive:
            for member in archive:
                if not member.isreg():
                    continue
                stream = archive.extractfile(member)
                content = stream.read() if stream is not None else b""
                if member.name == ".PKGINFO":
                    pkginfo = content.decode("utf-8")
                elif member.name in SCRIPT_NAMES:
                    scripts[member.name] = content
    except (tarfile.TarError, UnicodeDecodeError) as error:
        raise InputError(f"{label}: unreadable control stream ({error})") from None
    if pkginfo is None:
        raise InputError(f"{label}: no .PKGINFO in the control stream")
    return pkginfo, scripts


class _HashingStore:
    """Stores member data under a scratch directory, keeping the SHA-1 of each."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.count = 0
        self.last_sha1 = b""

    def put(self, source: BinaryIO, size: int) -> HostFile:
        self.count += 1
        path = self.directory / f"{self.count:06d}"
        digest = hashlib.sha1()
        with open(path, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
            written = out.tell()
        if written != size:
            raise InputError(f"member data truncated ({written} of {size} bytes)")
        self.last_sha1 = digest.digest()
        return HostFile(path, size)


def extract(apk: ApkFile, tree: Tree, scratch: Path, *, label: str,
            owners: dict[str, str], replaces: set[str]) -> list[InstalledFile]:
    """Add the package's data stream to ``tree`` with the owners and modes its tar headers
    record; return the files for the installed database.

    :param owners: path → package name of files already in the tree (from the database);
        overwriting one is an error unless that package is in ``replaces``.
    """
    store = _HashingStore(scratch)
    files: list[InstalledFile] = []
    with open(apk.path, "rb") as raw:
        raw.seek(apk.data_offset)
        try:
            with tarfile.open(fileobj=raw, mode="r|gz") as archive:
                for member in archive:
                    files.append(_extract_member(member, archive, tree, store, label,
                                                 owners, replaces))
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise InputError(f"{label}: unreadable data stream ({error})") from None
    return files


def _extract_member(member: tarfile.TarInfo, archive: tarfile.TarFile, tree: Tree,
                    store: _HashingStore, label: str, owners: dict[str, str],
                    replaces: set[str]) -> InstalledFile:
    path = "/" + member.name.strip("/").removeprefix("./")
    owner = owners.get(path)
    if owner is not None and not member.isdir() and owner not in replaces:
        existing = tree.get(path)
        if existing is not None and existing.kind is not EntryKind.DIR:
            raise InputError(f"{label}: would overwrite {path}, which belongs to package "
                             f"{owner!r} (and {label} does not declare replaces={owner})")
    entry = add_tar_member(tree, member, archive, store, label)  # type: ignore[arg-type]
    relative = entry.path.lstrip("/")
    if member.isdir():
        return InstalledFile(relative, True, member.uid, member.gid, member.mode & 0o7777)
    checksum = ""
    if member.isreg():
        digest = store.last_sha1
        recorded = member.pax_headers.get(PAX_SHA1)
        if recorded is not None and recorded.lower() != digest.hex():
            raise ChecksumMismatchError(f"{label}: {relative}", "sha1", recorded.lower(),
                                        digest.hex())
        checksum = "Q1" + base64.b64encode(digest).decode()
    elif member.issym():
        checksum = apk_checksum(member.linkname.encode())
    mode = 0o777 if member.issym() else member.mode & 0o7777
    return InstalledFile(relative, False, member.uid, member.gid, mode, checksum)

