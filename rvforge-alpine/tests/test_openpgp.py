"""Release signatures with gpgv, and the Alpine release key shipped with the package."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rvforge import InputError

from .gpg_helpers import Signer
from rvforge_alpine import openpgp


def v4_fingerprint(packets: bytes) -> str:
    """The fingerprint of the first (public key) packet: SHA-1 over 0x99, length, body."""
    tag = packets[0]
    assert tag & 0x80, "not an OpenPGP packet"
    if tag & 0x40:  # new format
        assert tag & 0x3F == 6
        first = packets[1]
        if first < 192:
            length, start = first, 2
        else:
            length, start = ((first - 192) << 8) + packets[2] + 192, 3
    else:  # old format
        assert (tag >> 2) & 0x0F == 6
        size = {0: 1, 1: 2, 2: 4}[tag & 3]
        length, start = int.from_bytes(packets[1:1 + size], "big"), 1 + size
    body = packets[start:start + length]
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()


def test_shipped_release_key_is_natanael_copas() -> None:
    packets = openpgp.dearmor(openpgp.release_key(), label="ncopa.asc")
    assert v4_fingerprint(packets) == openpgp.RELEASE_FINGERPRINT
    assert b"Natanael Copa <ncopa@alpinelinux.org>" in packets


def test_good_signature(signer: Signer, tmp_path: Path) -> None:
    data = tmp_path / "image.tar.gz"
    data.write_bytes(b"release bytes")
    signature = signer.sign(data).read_bytes()
    fingerprint = openpgp.verify_detached(data, signature, signer.public, tmp_path / "w",
                                          label="image", keyring_label="test key")
    assert len(fingerprint) == 40


def test_armoured_keyring_works_too(signer: Signer, tmp_path: Path) -> None:
    import base64
    armoured = (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
                + base64.encodebytes(signer.public)
                + b"=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n")
    assert openpgp.dearmor(armoured, label="k") == signer.public
    data = tmp_path / "f"
    data.write_bytes(b"x")
    openpgp.verify_detached(data, signer.sign(data).read_bytes(), armoured, tmp_path / "w",
                            label="f", keyring_label="k")


def test_bad_signature(signer: Signer, tmp_path: Path) -> None:
    data = tmp_path / "image.tar.gz"
    data.write_bytes(b"release bytes")
    signature = signer.sign(data).read_bytes()
    data.write_bytes(b"tampered bytes")
    with pytest.raises(InputError, match="BAD OpenPGP signature"):
        openpgp.verify_detached(data, signature, signer.public, tmp_path / "w", label="image",
                                keyring_label="test key")


def test_signature_by_a_key_outside_the_keyring(signer: Signer, tmp_path: Path) -> None:
    data = tmp_path / "image.tar.gz"
    data.write_bytes(b"release bytes")
    signature = signer.sign(data).read_bytes()
    with pytest.raises(InputError, match="which is not in Alpine's release key"):
        openpgp.verify_detached(data, signature, openpgp.release_key(), tmp_path / "w",
                                label="image", keyring_label="Alpine's release key")
