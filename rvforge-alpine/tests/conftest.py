"""Fixtures of rvforge-alpine's tests: a test apk signing key, the real minirootfs as a
Tree with that key trusted, and a throwaway OpenPGP signer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import Tree
from rvforge.formats.tar import read_tarball

from .gpg_helpers import Signer, make_signer, stop_agent
from rvforge_alpine.testing import new_key, public_pem

KEY_NAME = "rvforge-tests-5f3a9c1e.rsa.pub"


@pytest.fixture(scope="session")
def apk_key() -> rsa.RSAPrivateKey:
    """The key test repositories are signed with (``KEY_NAME`` in /etc/apk/keys)."""
    return new_key()


@pytest.fixture(scope="session")
def minirootfs(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """The real Alpine 3.20.3 riscv64 minirootfs, read once per session."""
    return read_tarball(alpine_tarball, tmp_path_factory.mktemp("minirootfs"))


@pytest.fixture
def alpine_root(minirootfs: Tree, apk_key: rsa.RSAPrivateKey) -> Tree:
    """A private copy of the minirootfs that also trusts the test key."""
    tree = minirootfs.copy()
    tree.add_file(f"/etc/apk/keys/{KEY_NAME}", public_pem(apk_key))
    return tree


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    """A throwaway OpenPGP key (GnuPG) that signs release files."""
    home = tmp_path_factory.mktemp("gnupg")
    yield make_signer(home)
    stop_agent(home)
