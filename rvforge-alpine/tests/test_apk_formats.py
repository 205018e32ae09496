"""APKINDEX.tar.gz and .apk files in the exact format: signatures, checksums, extraction."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import ChecksumMismatchError, EntryKind, InputError, Tree

from .conftest import KEY_NAME
from rvforge_alpine import apkindex, gzstreams, signatures
from rvforge_alpine.apkfile import extract, open_apk
from rvforge_alpine.testing import FileSpec, build_apk, build_index, new_key, public_pem


def keys_of(key: rsa.RSAPrivateKey, name: str = KEY_NAME) -> dict[str, rsa.RSAPublicKey]:
    tree = Tree()
    tree.add_file(f"/etc/apk/keys/{name}", public_pem(key))
    return signatures.trusted_keys(tree)


def hello(key: rsa.RSAPrivateKey, **kwargs: object) -> bytes:
    return build_apk(key, KEY_NAME, "hello", "1.0-r0", files=[
        FileSpec("usr", mode=0o755), FileSpec("usr/bin", mode=0o755),
        FileSpec("usr/bin/hello", b"#!/bin/sh\necho hi\n", mode=0o4755),
        FileSpec("usr/bin/hi", link="hello"),
        FileSpec("var/lib/hello", uid=100, gid=101, mode=0o700),
        FileSpec("var/lib/hello/state", b"x", uid=100, gid=101, mode=0o600),
    ], **kwargs).data  # type: ignore[arg-type]


def test_fixture_keys_load(minirootfs: Tree) -> None:
    assert sorted(signatures.trusted_keys(minirootfs)) == [
        "alpine-devel@lists.alpinelinux.org-60ac2099.rsa.pub",
        "alpine-devel@lists.alpinelinux.org-616db30d.rsa.pub",
    ]


def test_index_round_trip(apk_key: rsa.RSAPrivateKey) -> None:
    pkg = build_apk(apk_key, KEY_NAME, "hello", "1.0-r0", depends=["so:libc.musl-riscv64.so.1"],
                    provides=["cmd:hello=1.0-r0"])
    data = build_index(apk_key, KEY_NAME, [pkg])
    streams, rest = gzstreams.split_members(data, 2, label="i")
    assert rest == b"" and b"".join(streams) == data
    [info] = apkindex.read_index(data, keys_of(apk_key), label="i", repository="main")
    assert (info.name, info.version, info.repository) == ("hello", "1.0-r0", "main")
    assert info.checksum == pkg.checksum and info.size == len(pkg.data)
    assert str(info.depends[0]) == "so:libc.musl-riscv64.so.1"
    assert info.provided("cmd:hello") == (True, "1.0-r0")


def test_index_signed_by_an_untrusted_key(apk_key: rsa.RSAPrivateKey) -> None:
    data = build_index(new_key(), "someone-else.rsa.pub", [])
    with pytest.raises(InputError, match="someone-else.rsa.pub, which is not among the trusted"):
        apkindex.read_index(data, keys_of(apk_key), label="main/APKINDEX.tar.gz")


def test_index_with_a_forged_signature(apk_key: rsa.RSAPrivateKey) -> None:
    data = build_index(new_key(), KEY_NAME, [])  # right name, wrong key
    with pytest.raises(InputError, match="BAD signature by " + KEY_NAME):
        apkindex.read_index(data, keys_of(apk_key), label="main/APKINDEX.tar.gz")


def test_index_tampered_after_signing(apk_key: rsa.RSAPrivateKey) -> None:
    good = build_index(apk_key, KEY_NAME, [], text="P:a\nV:1\n\n")
    streams, _ = gzstreams.split_members(good, 2, label="i")
    evil = build_index(apk_key, KEY_NAME, [], text="P:b\nV:1\n\n")
    evil_streams, _ = gzstreams.split_members(evil, 2, label="i")
    with pytest.raises(InputError, match="BAD signature"):
        apkindex.read_index(streams[0] + evil_streams[1], keys_of(apk_key), label="i")


def test_truncated_index(apk_key: rsa.RSAPrivateKey) -> None:
    data = build_index(apk_key, KEY_NAME, [])
    with pytest.raises(InputError, match="truncated"):
        apkindex.read_index(data[:-20], keys_of(apk_key), label="i")


def test_unknown_upper_case_field_marks_package_uninstallable() -> None:
    [info] = apkindex.parse_index("P:a\nV:1.0-r0\nX:future\nz:ignored\n\n", label="i")
    assert info.unknown == ["X"]


def test_apk_verifies_and_extracts(apk_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    built = build_apk(apk_key, KEY_NAME, "hello", "1.0-r0", files=[
        FileSpec("usr/bin/hello", b"hi\n", mode=0o4755),
        FileSpec("usr/bin/hi", link="hello"),
        FileSpec("var/lib/hello", uid=100, gid=101, mode=0o700),
        FileSpec("var/lib/hello/state", b"x", uid=100, gid=101, mode=0o600),
    ], scripts={".post-install": b"#!/bin/sh\necho post\n"}, triggers=["/usr/share/x"])
    path = tmp_path / built.file_name
    path.write_bytes(built.data)
    # the three streams form one tar, as apk expects
    with open(path, "rb") as stream:
        assert len(gzstreams.member_spans(stream, 3, label="x")) == 3
    apk = open_apk(path, keys_of(apk_key), expected_checksum=built.checksum, label="hello")
    assert apk.info.label == "hello-1.0-r0"
    assert apk.scripts == {".post-install": b"#!/bin/sh\necho post\n"}
    assert apk.triggers == ["/usr/share/x"]
    tree = Tree()
    files = extract(apk, tree, tmp_path / "store", label="hello", owners={}, replaces=set())
    binary = tree["/usr/bin/hello"]
    assert (binary.kind, binary.mode, binary.uid, binary.gid) == (EntryKind.FILE, 0o4755, 0, 0)
    assert tree.read_bytes("/usr/bin/hello") == b"hi\n"
    assert tree["/usr/bin/hi"].kind is EntryKind.SYMLINK and tree["/usr/bin/hi"].target == "hello"
    state = tree["/var/lib/hello"]
    assert (state.kind, state.mode, state.uid, state.gid) == (EntryKind.DIR, 0o700, 100, 101)
    assert tree["/var/lib/hello/state"].mode == 0o600
    by_path = {f.path: f for f in files}
    assert by_path["usr/bin/hello"].checksum.startswith("Q1")
    assert by_path["var/lib/hello"].is_dir and by_path["var/lib/hello"].uid == 100


def test_apk_with_other_control_checksum(apk_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "hello.apk"
    path.write_bytes(hello(apk_key))
    with pytest.raises(ChecksumMismatchError, match=r"control stream\): sha1 \(C:\) mismatch"):
        open_apk(path, keys_of(apk_key), expected_checksum="Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                 label="hello")


def test_apk_with_replaced_data_stream(apk_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    built = build_apk(apk_key, KEY_NAME, "hello", "1.0-r0", files=[FileSpec("a", b"1")])
    with open(_write(tmp_path, built.data), "rb") as stream:
        spans = gzstreams.member_spans(stream, 2, label="x")
    forged = built.data[: spans[1][1]] + gzip.compress(b"\0" * 1024)
    path = _write(tmp_path, forged)
    with pytest.raises(ChecksumMismatchError, match="data stream"):
        open_apk(path, keys_of(apk_key), expected_checksum=built.checksum, label="hello")


def test_apk_signed_by_another_key(apk_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    built = build_apk(new_key(), KEY_NAME, "hello", "1.0-r0")
    path = _write(tmp_path, built.data)
    with pytest.raises(InputError, match="BAD signature"):
        open_apk(path, keys_of(apk_key), expected_checksum=built.checksum, label="hello")


def test_apk_member_escaping_the_root(apk_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    built = build_apk(apk_key, KEY_NAME, "evil", "1.0-r0",
                      files=[FileSpec("usr/../../etc/passwd", b"x")])
    apk = open_apk(_write(tmp_path, built.data), keys_of(apk_key),
                   expected_checksum=built.checksum, label="evil")
    with pytest.raises(InputError, match=r"\.\."):
        extract(apk, Tree(), tmp_path / "s", label="evil", owners={}, replaces=set())


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.apk"
    path.write_bytes(data)
    return path


def test_a_gzip_bomb_stream_is_refused_at_its_bound() -> None:
    bomb = gzip.compress(b"\0" * (4 << 20))  # 4 MiB of zeros in ~4 KiB
    assert gzstreams.inflate(bomb, label="index", limit=4 << 20) == b"\0" * (4 << 20)
    with pytest.raises(InputError, match=r"index: inflates to more than 1048576 bytes"):
        gzstreams.inflate(bomb, label="index", limit=1 << 20)
