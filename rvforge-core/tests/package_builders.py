"""Packages built the way their tools build them, for the audit tests: wheels (with a
RECORD, which can be made to lie), .apk files (three gzip streams) and .deb files (ar of
debian-binary, control.tar.xz, data.tar.xz)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

TAG = "cp312-cp312-manylinux_2_31_riscv64"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(directory: Path, members: dict[str, bytes], *, tag: str = TAG,
               lie: str | None = None) -> Path:
    """A wheel holding ``members`` plus METADATA/WHEEL and a RECORD (which lies about
    ``lie``'s hash when given)."""
    path = directory / f"demo-1.0-{tag}.whl"
    files = {**members, "demo-1.0.dist-info/METADATA": b"Name: demo\nVersion: 1.0\n",
             "demo-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nTag: {tag}\n".encode()}
    lines = [record_line(name, b"forged" if name == lie else data)
             for name, data in files.items()]
    lines.append("demo-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("demo-1.0.dist-info/RECORD", "\n".join(lines) + "\n")
    return path


def tar_bytes(members: dict[str, bytes], *, end: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    if not end:  # apk's first segments carry no end-of-archive blocks
        raw = raw.rstrip(b"\0")
        raw += b"\0" * (-len(raw) % 512)
    return raw


def make_apk(directory: Path, members: dict[str, bytes]) -> Path:
    """An .apk as abuild writes it: signature, control and data tar segments, each its
    own gzip stream."""
    path = directory / "demo-1.0-r0.apk"
    segments = [tar_bytes({".SIGN.RSA.demo.rsa.pub": b"\x01" * 256}, end=False),
                tar_bytes({".PKGINFO": b"pkgname = demo\npkgver = 1.0-r0\narch = riscv64\n"},
                          end=False),
                tar_bytes(members)]
    path.write_bytes(b"".join(gzip.compress(s, mtime=0) for s in segments))
    return path


def ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


COMPRESSORS = {"xz": lzma.compress, "gz": lambda data: gzip.compress(data, mtime=0),
               "zst": lambda data: __import__("zstandard").ZstdCompressor().compress(data),
               "": lambda data: data}
"""What dpkg-deb compresses data.tar with (``-Z``): the suffix and a compressor."""


def make_deb(directory: Path, members: dict[str, bytes], compression: str = "xz") -> Path:
    """A .deb as dpkg-deb writes it: ar of debian-binary, control.tar.xz and data.tar with
    ``compression`` (``xz``, ``gz``, ``zst``, or ``""`` for none)."""
    path = directory / f"demo_1.0_riscv64{compression}.deb"
    control = lzma.compress(tar_bytes({"./control": b"Package: demo\nVersion: 1.0\n"}))
    data = COMPRESSORS[compression](
        tar_bytes({f"./{name}": blob for name, blob in members.items()}))
    suffix = f".{compression}" if compression else ""
    path.write_bytes(b"!<arch>\n" + ar_member("debian-binary", b"2.0\n")
                     + ar_member("control.tar.xz", control)
                     + ar_member(f"data.tar{suffix}", data))
    return path
