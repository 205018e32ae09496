"""A suite's ``InRelease``: signature verification with ``gpgv`` and its file hashes.

Only the text ``gpgv`` reports as signed is parsed (``gpgv --output``), so nothing outside
the signature can add or change a hash.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rvforge import InputError, ToolMissingError
from rvforge.net.download import write_atomic
from rvforge.numbers import is_decimal
from rvforge.userfiles import read_regular

from rvforge_debootstrap import deb822

DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_INDEX_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*(/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$")


class SignatureError(InputError):
    """``InRelease`` is not validly signed by a key of the keyring."""


KEYRING_CAP = 64 << 20
"""Bytes of a keyring read at most (Debian's archive keyring is ~100 kB)."""


@dataclass(frozen=True)
class IndexFile:
    """A file the Release lists: path relative to ``dists/SUITE/``, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Release:
    """The verified fields of a suite's Release."""

    suite: str
    codename: str
    version: str
    architectures: tuple[str, ...]
    components: tuple[str, ...]
    acquire_by_hash: bool
    files: dict[str, IndexFile] = field(default_factory=dict)

    def file(self, path: str, label: str) -> IndexFile:
        try:
            return self.files[path]
        except KeyError:
            raise InputError(f"{label}: the Release of {self.codename or self.suite} does not "
                             f"list {path}") from None


def verify_inrelease(data: bytes, keyring: Path, label: str,
                     keyring_package: str = "debian-archive-keyring", *,
                     named: bool = False, memo: Path | None = None) -> str:
    """Check the clearsigned ``data`` with ``gpgv`` against ``keyring``; return the signed text.

    :param named: the user named ``keyring`` (``--keyring``): a missing or unreadable one is
        a :class:`UsageError`, not a missing host package.
    :param memo: a file remembering the last check (the SHA-256 of ``data`` and of the
        keyring, and the signed text): while both are the same bytes, gpgv is not run again
        (a warm ``rvforge run`` reads the same cached InRelease every time).
    :raises ToolMissingError: gpgv or the default keyring is missing.
    :raises SignatureError: the signature is bad or from an unknown key.
    """
    keys = _keyring_bytes(keyring, keyring_package, named)
    stamp = f"{hashlib.sha256(data).hexdigest()} {hashlib.sha256(keys).hexdigest()}\n"
    if memo is not None and (text := _remembered(memo, stamp)) is not None:
        return text
    text = _gpgv(data, keys, keyring, label)
    if memo is not None:
        write_atomic(memo, (stamp + text).encode())
    return text


def _keyring_bytes(keyring: Path, keyring_package: str, named: bool) -> bytes:
    if named:
        return read_regular(keyring, "keyring (--keyring)", KEYRING_CAP,
                            hint="pass --keyring an OpenPGP keyring file")
    if not keyring.is_file():
        raise ToolMissingError(f"keyring {keyring} is missing: apt-get install "
                               f"{keyring_package}, or pass --keyring PATH")
    return read_regular(keyring, "keyring", KEYRING_CAP, error=ToolMissingError,
                        hint=f"reinstall {keyring_package}, or pass --keyring PATH")


def _remembered(memo: Path, stamp: str) -> str | None:
    """The signed text ``memo`` holds under ``stamp``, or ``None`` (absent, another
    stamp, unreadable)."""
    try:
        text = memo.read_bytes().decode()
    except (OSError, UnicodeDecodeError):
        return None
    return text[len(stamp):] if text.startswith(stamp) else None


def _gpgv(data: bytes, keys: bytes, keyring: Path, label: str) -> str:
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise ToolMissingError("gpgv is missing: apt-get install gpgv")
    with tempfile.TemporaryDirectory(prefix="rvforge-gpgv-") as tmp:
        copy = Path(tmp, "keyring" + "".join(keyring.suffixes[-1:]))
        copy.write_bytes(keys)  # read once, capped: gpgv never opens a FIFO or a device
        signed = Path(tmp, "InRelease")
        signed.write_bytes(data)
        plain = Path(tmp, "Release")
        result = subprocess.run(
            [gpgv, "--quiet", "--keyring", str(copy), "--output", str(plain), str(signed)],
            capture_output=True, text=True,
        )
        if result.returncode != 0 or not plain.exists():
            detail = " ".join(result.stderr.split())[-300:]
            raise SignatureError(f"{label}: signature check failed with keyring {keyring} "
                                 f"({detail}); the mirror's index is not authentic, or pass "
                                 "the right --keyring")
        return plain.read_text(errors="replace")


def parse_release(text: str, label: str = "Release") -> Release:
    """Parse a (verified) Release text; a ``SHA256`` line whose digest, size or path is
    malformed is an :class:`InputError` naming ``label``."""
    try:
        para = deb822.parse_one(text)
    except ValueError as error:
        raise InputError(f"{label}: malformed ({error}); refusing the Release") from None
    files: dict[str, IndexFile] = {}
    for line in para.field("SHA256").splitlines():
        words = line.split()
        if len(words) == 3:
            digest, size, path = words
            if not (_SHA256.match(digest) and is_decimal(size, max_digits=15)
                    and _INDEX_PATH.match(path) and ".." not in path.split("/")):
                raise InputError(f"{label}: malformed SHA256 line {line.strip()[:200]!r} "
                                 "(expected a digest, a size and a relative path without "
                                 "'..'); refusing the Release")
            files[path] = IndexFile(path, int(size), digest.lower())
    return Release(
        suite=para.field("Suite"),
        codename=para.field("Codename"),
        version=para.field("Version"),
        architectures=tuple(para.field("Architectures").split()),
        components=tuple(para.field("Components").split()),
        acquire_by_hash=para.field("Acquire-By-Hash").lower() == "yes",
        files=files,
    )
