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


def tar_with(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.GNU_FORMAT
             ) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
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
    trust_edges()
    (HERE / "bad-syntax.toml").write_text('[build]\nprovider = "local\n')
    (HERE / "unknown-key.toml").write_text('[build]\nprovder = "local"\n')
    (HERE / "bad-audit-mode.toml").write_text('[build]\naudit = "sometimes"\n')


def with_attrs(info_data: tuple[tarfile.TarInfo, bytes | None], **attrs: object
               ) -> tuple[tarfile.TarInfo, bytes | None]:
    info, data = info_data
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def trust_edges() -> None:
    """Issue 11's cases: symlink chains, header values no guest can read, configs of the
    wrong type or range."""
    (HERE / "chain-symlink.tar").write_bytes(tar_with(
        member("./a", tarfile.DIRTYPE), member("./a/a", tarfile.SYMTYPE, link="."),
        member("./a/up", tarfile.SYMTYPE, link=".."),
        member("./a/x", tarfile.SYMTYPE, link="a/a/a/up/../../etc/passwd")))
    (HERE / "chain-symlink-late.tar").write_bytes(tar_with(
        member("./a", tarfile.DIRTYPE),
        member("./a/x", tarfile.SYMTYPE, link="up/../etc/passwd"),
        member("./a/up", tarfile.SYMTYPE, link="..")))
    pax_mtime = [member("./etc", tarfile.DIRTYPE), member("./etc/f", data=b"x")]
    for name, value in (("inf", "inf"), ("1e300", "1e300"), ("nan", "nan")):
        info, data = member("./etc/f", data=b"x")
        info.pax_headers = {"mtime": value}
        (HERE / f"pax-mtime-{name}.tar").write_bytes(
            tar_with(pax_mtime[0], (info, data), fmt=tarfile.PAX_FORMAT))
    (HERE / "device-major-2e40.tar").write_bytes(tar_with(with_attrs(
        member("./dev/huge", tarfile.CHRTYPE), devmajor=1 << 40, devminor=1)))
    (HERE / "negative-uid.tar").write_bytes(tar_with(with_attrs(
        member("./etc/f", data=b"x"), uid=-7)))
    info, data = member("./etc/f", data=b"x")
    info.pax_headers = {"uid": "-7"}
    (HERE / "pax-negative-uid.tar").write_bytes(tar_with((info, data), fmt=tarfile.PAX_FORMAT))
    (HERE / "name-over-path-max.tar").write_bytes(tar_with(
        member("./" + "/".join(["d" * 200] * 21), data=b"x")))
    (HERE / "nested-1200.tar.gz").write_bytes(gzip.compress(tar_with(
        member("./" + "/".join(["d"] * 1200), tarfile.DIRTYPE)), mtime=0))
    configs = {
        "bad-utf8.toml": b'[build]\nprovider = "\xff\xfe"\n',
        "deep-nesting.toml": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "output-number.toml": b"[build]\noutput = 5\n",
        "provider-list.toml": b'[build]\nprovider = ["local"]\n',
        "auditors-numbers.toml": b"[build]\nauditors = [1, 2]\n",
        "auditors-string.toml": b'[build]\nauditors = "isa"\n',
        "init-string.toml": b'[build]\ninit = "false"\n',
        "memory-huge.toml": b"[machines.big]\nmemory = 1e400\n",
        "memory-zero.toml": b"[machines.big]\nmemory = 0\n",
        "cpus-zero.toml": b"[machines.big]\ncpus = 0\n",
        "overlay-uid-negative.toml": b'[[overlay]]\nname = "file"\nsource = "/etc/hostname"\n'
                                     b'dest = "/etc/x"\nuid = -1\n',
        "overlay-uid-float.toml": b'[[overlay]]\nname = "file"\nsource = "/etc/hostname"\n'
                                  b'dest = "/etc/x"\nuid = 1.5\n',
    }
    for name, data in configs.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
