"""Test helpers for rvforge-alpine and for anyone serving their own Alpine repositories.

* :func:`build_apk` and :func:`build_index` write real apk v2 files: concatenated gzip
  streams, ``.PKGINFO`` with ``datahash``, ``APK-TOOLS.checksum.SHA1`` PAX headers, and
  RSA-SHA1 signatures with a key whose public half goes into a tree's ``/etc/apk/keys``.
* :func:`write_repository` lays them out in Alpine's mirror layout, to be served with
  :func:`rvforge.testing.loopback_mirror` or used as a local ``--mirror``.

Nothing here is used by the provider itself.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key, as ``abuild-keygen`` makes."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The PEM public key, the content of an ``/etc/apk/keys/*.rsa.pub`` file."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _member(name: str, data: bytes, *, mode: int = 0o644, pax: dict[str, str] | None = None
            ) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uname, info.gname = len(data), mode, "root", "root"
    if pax:
        info.pax_headers = dict(pax)
    header = info.tobuf(tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT)
    return header + data + b"\0" * (-len(data) % 512)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _signature_stream(key: rsa.RSAPrivateKey, key_name: str, signed: bytes) -> bytes:
    value = key.sign(signed, padding.PKCS1v15(), hashes.SHA1())
    return _gzip(_member(f".SIGN.RSA.{key_name}", value))  # cut: no end-of-archive blocks


@dataclass
class FileSpec:
    """A member of a test package's data stream.

    :param content: bytes of a file; ``None`` for a directory or (with ``link``) a symlink.
    """

    path: str
    content: bytes | None = None
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    link: str | None = None


@dataclass
class BuiltApk:
    """A test package: its file bytes and its ``APKINDEX`` record."""

    name: str
    version: str
    data: bytes
    index_lines: list[tuple[str, str]]

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.apk"

    @property
    def checksum(self) -> str:
        return dict(self.index_lines)["C"]


def build_apk(key: rsa.RSAPrivateKey, key_name: str, name: str, version: str, *,
              files: Sequence[FileSpec] = (), depends: Sequence[str] = (),
              provides: Sequence[str] = (), install_if: Sequence[str] = (),
              provider_priority: int | None = None, replaces: Sequence[str] = (),
              scripts: dict[str, bytes] | None = None, triggers: Sequence[str] = (),
              arch: str = "riscv64") -> BuiltApk:
    """An apk v2 package as abuild writes it, signed with ``key`` (named ``key_name`` in
    ``/etc/apk/keys``)."""
    data_tar = io.BytesIO()
    with tarfile.open(fileobj=data_tar, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for spec in files:
            info = tarfile.TarInfo(spec.path.lstrip("/"))
            info.uid, info.gid, info.mtime = spec.uid, spec.gid, 1700000000
            payload = None
            if spec.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, spec.link, 0o777
                info.pax_headers = {
                    "APK-TOOLS.checksum.SHA1": hashlib.sha1(spec.link.encode()).hexdigest()}
            elif spec.content is None:
                info.type, info.mode = tarfile.DIRTYPE, spec.mode or 0o755
            else:
                info.size, info.mode = len(spec.content), spec.mode or 0o644
                info.pax_headers = {
                    "APK-TOOLS.checksum.SHA1": hashlib.sha1(spec.content).hexdigest()}
                payload = io.BytesIO(spec.content)
            archive.addfile(info, payload)
    data_gz = _gzip(data_tar.getvalue())
    size = sum(len(f.content or b"") for f in files)
    pkginfo = [("pkgname", name), ("pkgver", version), ("pkgdesc", f"test package {name}"),
               ("url", "https://example.invalid/"), ("builddate", "1700000000"),
               ("packager", "rvforge tests"), ("size", str(size)), ("arch", arch),
               ("origin", name), ("maintainer", "rvforge tests"), ("license", "MIT")]
    pkginfo += [("depend", d) for d in depends]
    pkginfo += [("provides", p) for p in provides]
    if install_if:
        pkginfo.append(("install_if", " ".join(install_if)))
    if provider_priority is not None:
        pkginfo.append(("provider_priority", str(provider_priority)))
    pkginfo += [("replaces", r) for r in replaces]
    if triggers:
        pkginfo.append(("triggers", " ".join(triggers)))
    pkginfo.append(("datahash", hashlib.sha256(data_gz).hexdigest()))
    text = "# Generated by rvforge tests\n" + "".join(f"{k} = {v}\n" for k, v in pkginfo)
    control = _member(".PKGINFO", text.encode())
    for script, body in sorted((scripts or {}).items()):
        control += _member(script, body, mode=0o755)
    control_gz = _gzip(control)  # cut, as abuild does: the data stream ends the tar
    apk = _signature_stream(key, key_name, control_gz) + control_gz + data_gz
    checksum = "Q1" + base64.b64encode(hashlib.sha1(control_gz).digest()).decode()
    lines = [("C", checksum), ("P", name), ("V", version), ("A", arch),
             ("S", str(len(apk))), ("I", str(size)), ("T", f"test package {name}"),
             ("U", "https://example.invalid/"), ("L", "MIT"), ("o", name),
             ("m", "rvforge tests"), ("t", "1700000000")]
    if provider_priority is not None:
        lines.append(("k", str(provider_priority)))
    for key_letter, values in (("D", depends), ("p", provides), ("i", install_if),
                               ("r", replaces)):
        if values:
            lines.append((key_letter, " ".join(values)))
    return BuiltApk(name, version, apk, lines)


def index_text(packages: list[BuiltApk]) -> str:
    """The ``APKINDEX`` text for ``packages``."""
    return "".join("".join(f"{k}:{v}\n" for k, v in p.index_lines) + "\n" for p in packages)


def build_index(key: rsa.RSAPrivateKey, key_name: str, packages: list[BuiltApk], *,
                text: str | None = None) -> bytes:
    """A signed ``APKINDEX.tar.gz`` for ``packages`` (or for an explicit index ``text``)."""
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, content in (("DESCRIPTION", b"rvforge test repository"),
                              ("APKINDEX", (text or index_text(packages)).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    index_gz = _gzip(body.getvalue())
    return _signature_stream(key, key_name, index_gz) + index_gz


def write_repository(root: Path, branch: str, repository: str, key: rsa.RSAPrivateKey,
                     key_name: str, packages: list[BuiltApk]) -> Path:
    """Lay out ``packages`` and their signed index in Alpine's mirror layout under
    ``root`` (``<branch>/<repository>/riscv64/``); return that directory."""
    directory = root / branch / repository / "riscv64"
    directory.mkdir(parents=True, exist_ok=True)
    for package in packages:
        (directory / package.file_name).write_bytes(package.data)
    (directory / "APKINDEX.tar.gz").write_bytes(build_index(key, key_name, packages))
    return directory
