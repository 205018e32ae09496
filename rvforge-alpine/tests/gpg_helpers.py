"""A throwaway OpenPGP signing key made with GnuPG, for release-signature tests."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Signer:
    """Signs files with a fresh key; :attr:`public` is its exported public key."""

    home: Path
    public: bytes

    def sign(self, path: Path) -> Path:
        """Write ``path.asc``, an armoured detached signature, and return it."""
        signature = path.with_name(path.name + ".asc")
        signature.unlink(missing_ok=True)
        _gpg(self.home, "--armor", "--detach-sign", "--output", str(signature), str(path))
        return signature


def make_signer(home: Path) -> Signer:
    if shutil.which("gpg") is None:
        pytest.fail("gpg (GnuPG) is needed to make a test signing key: apt-get install gnupg "
                    "(.ci/run installs it)")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "rvforge test <test@example.invalid>",
         "ed25519", "sign", "never")
    public = _gpg(home, "--export").stdout
    return Signer(home, public)


def stop_agent(home: Path) -> None:
    if shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False)


def _gpg(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes",
                             "--pinentry-mode", "loopback", *args], capture_output=True,
                            check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result
