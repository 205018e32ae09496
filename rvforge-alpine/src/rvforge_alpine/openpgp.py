"""Alpine release signatures: detached OpenPGP signatures (``.asc``) checked with ``gpgv``.

Why ``gpgv``: it is GnuPG's verify-only tool, made for exactly this (Debian's apt uses it
for the same job), present wherever GnuPG is, and it takes a keyring file and trusts every
key in it without a GnuPG home or trust database. The pure-Python OpenPGP libraries are
either unmaintained or large to pull in for one check. ``gpgv``'s machine-readable status
lines (``--status-fd``) tell a bad signature from an unknown key.

The release key shipped with this package (:data:`RELEASE_KEY`) is Natanael Copa's,
fingerprint :data:`RELEASE_FINGERPRINT`, the key Alpine signs its release images with.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from rvforge import InputError, ToolMissingError

RELEASE_FINGERPRINT = "0482D84022F52DF1C4E7CD43293ACD0907D9495A"
RELEASE_KEY = "ncopa.asc"
"""File name of Alpine's release key in ``rvforge_alpine/keys``."""
GPGV_TIMEOUT = 60


def release_key() -> bytes:
    """Alpine's release signing key (ASCII-armoured), as shipped with rvforge-alpine."""
    return resources.files("rvforge_alpine").joinpath("keys", RELEASE_KEY).read_bytes()


def dearmor(data: bytes, *, label: str) -> bytes:
    """Binary OpenPGP packets from ``data``: ASCII-armoured blocks are decoded, anything
    else is returned as it is (already binary)."""
    text = data.lstrip()
    if not text.startswith(b"-----BEGIN PGP"):
        return data
    packets = b""
    body: list[bytes] | None = None
    in_headers = False
    for line in data.decode("ascii", errors="replace").splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN PGP"):
            body, in_headers = [], True
        elif line.startswith("-----END PGP"):
            try:
                packets += base64.b64decode(b"".join(body or []), validate=True)
            except binascii.Error:
                raise InputError(f"{label}: corrupt ASCII armour") from None
            body = None
        elif body is not None:
            if in_headers:
                in_headers = ":" in line
                if in_headers or not line:
                    continue
            if line.startswith("=") and len(line) == 5:
                continue  # the armour's CRC-24 line
            body.append(line.encode())
    if not packets:
        raise InputError(f"{label}: no complete PGP block in the armour")
    return packets


def verify_detached(data: Path, signature: bytes, keyring: bytes, workdir: Path, *,
                    label: str, keyring_label: str) -> str:
    """Check ``signature`` (armoured or binary) over the file ``data`` against ``keyring``
    (one or more public keys, armoured or binary); return the signing key's fingerprint.

    :param workdir: an empty scratch directory for gpgv's home and temporary files.
    :raises ToolMissingError: ``gpgv`` is not installed.
    :raises InputError: the signature is bad, or made by a key not in ``keyring``.
    """
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise ToolMissingError(
            "gpgv is needed to check Alpine's release signature: install GnuPG "
            "(apt-get install gpgv), or pass --no-verify-signature to skip the check"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    keyring_file = workdir / "keyring.gpg"
    keyring_file.write_bytes(dearmor(keyring, label=keyring_label))
    signature_file = workdir / "signature.sig"
    signature_file.write_bytes(dearmor(signature, label=f"{label}.asc"))
    home = workdir / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    result = subprocess.run(
        [gpgv, "--homedir", str(home), "--keyring", str(keyring_file.resolve()),
         "--status-fd", "1", str(signature_file), str(data)],
        capture_output=True, text=True, timeout=GPGV_TIMEOUT, check=False,
    )
    status = [line.split()[1:] for line in result.stdout.splitlines()
              if line.startswith("[GNUPG:] ")]
    valid = [words[1] for words in status if words and words[0] == "VALIDSIG"]
    if result.returncode == 0 and valid:
        return valid[0]
    if any(words and words[0] == "BADSIG" for words in status):
        raise InputError(f"{label}: BAD OpenPGP signature ({label}.asc); the file is "
                         "corrupt or was tampered with (nothing was kept)")
    missing = [words[1] for words in status if words and words[0] == "NO_PUBKEY"]
    if missing:
        raise InputError(
            f"{label}: signed by OpenPGP key {missing[0]}, which is not in {keyring_label}; "
            "pass --keyring FILE with that key if you trust it"
        )
    detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
    raise InputError(f"{label}: signature check failed ({detail}); the .asc file may be "
                     "corrupt")
