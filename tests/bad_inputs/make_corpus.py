"""Regenerate the bad-input corpus in this directory (the files are committed).

Run: python tests/bad_inputs/make_corpus.py
Each file is one way a user's input can be wrong; tests/test_bad_inputs.py checks that
rvforge answers each with its documented exit code and a one-line message.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALPINE = HERE.parent / "data" / "alpine" / "alpine-minirootfs-3.20.3-riscv64.tar.gz"


def tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
           link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if data is not None:
        info.size = len(data)
    return info, data


def main() -> None:
    alpine = ALPINE.read_bytes()
    (HERE / "truncated.tar.gz").write_bytes(alpine[: len(alpine) // 3])
    corrupt = bytearray(alpine)
    for offset in range(200_000, 200_064):
        corrupt[offset] ^= 0xFF
    (HERE / "corrupt.tar.gz").write_bytes(bytes(corrupt))
    (HERE / "not-a-tarball.tar.gz").write_bytes(gzip.compress(b"hello\n" * 100, mtime=0))
    (HERE / "empty.tar").write_bytes(b"")
    (HERE / "dotdot-member.tar").write_bytes(tar_with(
        member("./etc", tarfile.DIRTYPE), member("./../../evil", data=b"pwned\n")))
    (HERE / "absolute-member.tar").write_bytes(tar_with(
        member("/etc/cron.d/evil", data=b"* * * * * root sh\n")))
    (HERE / "escaping-symlink.tar").write_bytes(tar_with(
        member("./etc", tarfile.DIRTYPE),
        member("./etc/evil", tarfile.SYMTYPE, link="../../../../../root/.ssh")))
    (HERE / "absolute-hardlink.tar").write_bytes(tar_with(
        member("./etc", tarfile.DIRTYPE),
        member("./etc/shadow-copy", tarfile.LNKTYPE, link="/etc/shadow")))
    (HERE / "escaping-hardlink.tar").write_bytes(tar_with(
        member("./etc", tarfile.DIRTYPE),
        member("./etc/passwd-copy", tarfile.LNKTYPE, link="../../etc/passwd")))
    (HERE / "bad-syntax.toml").write_text('[build]\nprovider = "local\n')
    (HERE / "unknown-key.toml").write_text('[build]\nprovder = "local"\n')
    (HERE / "bad-audit-mode.toml").write_text('[build]\naudit = "sometimes"\n')


if __name__ == "__main__":
    main()
