"""apk's RSA signatures: the trusted keys of a root filesystem and signature checks.

Repository indexes and packages carry a first gzip stream holding one tar member named
``.SIGN.RSA.<key file name>`` (PKCS#1 v1.5 over SHA-1) or ``.SIGN.RSA256.<key file name>``
(SHA-256), signing the raw compressed bytes of the stream after it. The key is looked up by
that file name among ``/etc/apk/keys/*`` *of the tree being built*, exactly as apk trusts
the keys of its ``--root``: the minirootfs brings Alpine's keys (alpine-keys), and a test or
an internal repository adds its own key there.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rvforge import InputError, Tree

from rvforge_alpine import gzstreams

KEYS_DIR = "/etc/apk/keys"
_ALGORITHMS = {".SIGN.RSA.": hashes.SHA1, ".SIGN.RSA256.": hashes.SHA256}


@dataclass(frozen=True)
class Signature:
    """A signature member: which key (file name in ``/etc/apk/keys``), which hash, bytes."""

    key_name: str
    algorithm: str
    value: bytes


def trusted_keys(tree: Tree) -> dict[str, rsa.RSAPublicKey]:
    """The RSA public keys in the tree's ``/etc/apk/keys``, by file name."""
    keys: dict[str, rsa.RSAPublicKey] = {}
    if KEYS_DIR not in tree:
        return keys
    for entry in tree.children(KEYS_DIR):
        if not tree.is_file(entry.path):
            continue
        pem = tree.read_bytes(entry.path)
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm):
            raise InputError(f"{entry.path}: not a PEM public key; remove it or replace "
                             "it with the key file apk expects") from None
        if isinstance(key, rsa.RSAPublicKey):
            keys[entry.name] = key
    return keys


def read_signature(member: bytes, *, label: str) -> Signature:
    """Parse the signature gzip stream (a tar with one ``.SIGN.*`` member)."""
    data = gzstreams.inflate(member, label=f"{label}: signature stream")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as archive:
            for info in archive:
                for prefix, algorithm in _ALGORITHMS.items():
                    if info.name.startswith(prefix) and info.isreg():
                        stream = archive.extractfile(info)
                        value = stream.read() if stream is not None else b""
                        return Signature(info.name[len(prefix):], algorithm().name, value)
    except tarfile.TarError as error:
        raise InputError(f"{label}: unreadable signature stream ({error})") from None
    raise InputError(f"{label}: not signed (no .SIGN.RSA.* member in the first stream)")


def verify(signature: Signature, signed: bytes, keys: dict[str, rsa.RSAPublicKey], *,
           label: str) -> None:
    """Raise :class:`InputError` unless ``signature`` is a valid signature of ``signed`` by
    the trusted key it names."""
    key = keys.get(signature.key_name)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        raise InputError(
            f"{label}: signed with {signature.key_name}, which is not among the trusted keys "
            f"in {KEYS_DIR} (have: {known}); add that public key to the tree's {KEYS_DIR}"
        )
    algorithm = hashes.SHA1() if signature.algorithm == "sha1" else hashes.SHA256()
    try:
        key.verify(signature.value, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise InputError(
            f"{label}: BAD signature by {signature.key_name}; the file is corrupt or was "
            "tampered with"
        ) from None
