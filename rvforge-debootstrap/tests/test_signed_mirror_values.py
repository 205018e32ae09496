"""A local Debian mirror signed with a test key (``--keyring``): what a signed index says is
still data until validated. A Release line without ``:``, a Packages ``Depends`` or
``Version`` that does not parse, a ``Packages.xz`` that inflates without bound, a keyring
that is missing, a FIFO or a device: each is exit 2 with one line, through the CLI."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rvforge import ToolMissingError
from rvforge.cli import app
from rvforge.testing import assert_one_line_error

from rvforge_debootstrap.release import verify_inrelease

Build = Callable[..., subprocess.CompletedProcess[str]]

PACKAGE = """Package: base-files
Version: 13.8
Architecture: riscv64
Priority: required
Essential: yes
Filename: pool/main/b/base-files/base-files_13.8_riscv64.deb
Size: 100
SHA256: {sha}
Depends: {depends}
"""


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], Path]]:
    """A GnuPG home with one signing key, and a keyring file holding that key."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg (GnuPG) is needed to sign a test Release: apt-get install gnupg")
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "test <t@example.invalid>",
                    "ed25519", "sign", "never"], check=True, capture_output=True)
    keyring = home / "test.gpg"
    keyring.write_bytes(subprocess.run([*gpg, "--export"], check=True,
                                       capture_output=True).stdout)
    yield gpg, keyring
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True, check=False)


def publish(root: Path, gpg: list[str], *, packages_xz: bytes, release_extra: str = "",
            sha_lines: str | None = None) -> None:
    """``dists/trixie/InRelease`` (clearsigned) and its ``Packages.xz`` under ``root``."""
    dists = root / "dists" / "trixie"
    (dists / "main" / "binary-riscv64").mkdir(parents=True)
    (dists / "main" / "binary-riscv64" / "Packages.xz").write_bytes(packages_xz)
    line = (f" {hashlib.sha256(packages_xz).hexdigest()} {len(packages_xz)} "
            "main/binary-riscv64/Packages.xz\n")
    release = ("Suite: stable\nCodename: trixie\nArchitectures: riscv64\nComponents: main\n"
               f"{release_extra}SHA256:\n{line if sha_lines is None else sha_lines}")
    (dists / "Release").write_text(release)
    subprocess.run([*gpg, "--yes", "--clearsign", "--output", str(dists / "InRelease"),
                    str(dists / "Release")], check=True, capture_output=True)


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Build]:
    """``rvforge build --provider debootstrap`` on the local mirror ``tmp_path/mirror``;
    afterwards nothing may have appeared outside the output, the cache and the mirror."""
    out, cache, mirror = tmp_path / "out", tmp_path / "cache", tmp_path / "mirror"
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(cache))
    before = set(tmp_path.rglob("*"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(app, [
            "--quiet", "build", "--provider", "debootstrap", "--mirror", f"file://{mirror}",
            "--release", "trixie", "--variant", "extract", *args, "-o",
            str(out / "image.tar"), "--no-audit", "--isa", "rv64gc"])
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout,
                                           result.stderr)

    yield run
    allowed = (out, cache, mirror, tmp_path / "inputs")
    escaped = [p for p in set(tmp_path.rglob("*")) - before
               if not any(p == a or p.is_relative_to(a) for a in allowed)]
    assert escaped == []
    assert not out.exists() or not list(out.iterdir())


def index(depends: str = "libc6", version: str = "13.8") -> bytes:
    text = PACKAGE.format(sha="a" * 64, depends=depends).replace("13.8", version)
    return lzma.compress(text.encode())


@pytest.mark.parametrize("extra, message", [
    ("Origin Debian\n", "not a 'Field: value' line"),
    (" continued\n", "continuation line"),
])
def test_a_signed_release_that_is_not_deb822_is_one_line(
        build: Build, signer: tuple[list[str], Path], tmp_path: Path, extra: str,
        message: str) -> None:
    gpg, keyring = signer
    release_extra = extra
    publish(tmp_path / "mirror", gpg, packages_xz=index(), release_extra=release_extra)
    if extra.startswith(" "):  # a continuation before any field: the Release's first line
        dists = tmp_path / "mirror" / "dists" / "trixie"
        text = (dists / "Release").read_text()
        (dists / "Release").write_text(extra + text.replace(extra, ""))
        subprocess.run([*gpg, "--yes", "--clearsign", "--output", str(dists / "InRelease"),
                        str(dists / "Release")], check=True, capture_output=True)
    result = build("--keyring", str(keyring))
    assert_one_line_error(result, 2, message)
    assert "trixie InRelease" in result.stderr


@pytest.mark.parametrize("depends, version, message", [
    ("libc6 (>= 2.3", "13.8", "Depends 'libc6 (>= 2.3' does not parse"),
    ("libc6 (>= x:1)", "13.8", "Depends 'libc6 (>= x:1)' does not parse"),
    ("libc6", "x:13.8", "Version 'x:13.8' is not a Debian version"),
    ("libc6", "1²:13.8", "is not a Debian version"),
])
def test_a_signed_index_value_that_does_not_parse_is_one_line(
        build: Build, signer: tuple[list[str], Path], tmp_path: Path, depends: str,
        version: str, message: str) -> None:
    gpg, keyring = signer
    publish(tmp_path / "mirror", gpg, packages_xz=index(depends, version))
    result = build("--keyring", str(keyring))
    assert_one_line_error(result, 2, message)


def test_a_packages_xz_that_inflates_without_bound_is_refused(
        build: Build, signer: tuple[list[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rvforge_debootstrap.archive.MAX_INDEX", 4 << 20)
    gpg, keyring = signer
    bomb = lzma.compress(b"\n" * (16 << 20))  # ~2 kB
    publish(tmp_path / "mirror", gpg, packages_xz=bomb)
    result = build("--keyring", str(keyring))
    assert_one_line_error(result, 2, f"inflates to more than {4 << 20} bytes")


@pytest.mark.parametrize("kind", ["missing", "fifo", "device", "directory"])
def test_a_named_keyring_that_is_not_a_regular_file_is_a_usage_error(
        build: Build, signer: tuple[list[str], Path], tmp_path: Path, kind: str) -> None:
    """Once exit 125 ("apt-get install ...") for a keyring the user named, or a hang."""
    gpg, _ = signer
    publish(tmp_path / "mirror", gpg, packages_xz=index())
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    keyring = {"missing": inputs / "nope.gpg", "fifo": inputs / "fifo.gpg",
               "device": Path("/dev/zero"), "directory": inputs / "dir.gpg"}[kind]
    if kind == "fifo":
        os.mkfifo(keyring)
    if kind == "directory":
        keyring.mkdir()
    result = build("--keyring", str(keyring))
    assert_one_line_error(result, 2, f"{keyring}:")
    assert "--keyring" in result.stderr


def test_a_verified_inrelease_is_remembered_for_the_same_bytes_only(
        signer: tuple[list[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """A warm run re-reads the cached InRelease: gpgv checks it once; the same InRelease
    and keyring again need no gpgv (none is on PATH the second time), another byte in
    either does."""
    gpg, keyring = signer
    publish(tmp_path, gpg, packages_xz=lzma.compress(b""))
    signed = (tmp_path / "dists/trixie/InRelease").read_bytes()
    memo = tmp_path / "cache" / "InRelease.verified"
    text = verify_inrelease(signed, keyring, "test InRelease", named=True, memo=memo)
    assert text.startswith("Suite: stable\n") and memo.is_file()
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert verify_inrelease(signed, keyring, "test InRelease", named=True, memo=memo) == text
    other_keyring = tmp_path / "other.gpg"
    other_keyring.write_bytes(keyring.read_bytes() + b"\0")
    for data, keys in ((signed.replace(b"trixie", b"trixiE"), keyring), (signed, other_keyring)):
        with pytest.raises(ToolMissingError, match="gpgv is missing"):
            verify_inrelease(data, keys, "test InRelease", named=True, memo=memo)
    memo.write_bytes(b"0" * 64 + memo.read_bytes()[64:])  # a memo for other bytes
    with pytest.raises(ToolMissingError, match="gpgv is missing"):
        verify_inrelease(signed, keyring, "test InRelease", named=True, memo=memo)
