"""``rvforge build --provider alpine`` end to end: the real minirootfs served over HTTP on
127.0.0.1 in Alpine's mirror layout, faults injected, through the real CLI."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rvforge.testing import Fault, LoopbackMirror, loopback_mirror

from rvforge_alpine.testing import FileSpec, build_apk, new_key, public_pem, write_repository

VERSION = "3.20.3"
FILE = f"alpine-minirootfs-{VERSION}-riscv64.tar.gz"
RELEASES = "v3.20/releases/riscv64"

Cli = Callable[..., subprocess.CompletedProcess[str]]


def latest_releases(tarball: Path, *, sha256: str | None = None) -> str:
    """latest-releases.yaml as Alpine writes it (a netboot entry, then the minirootfs)."""
    data = tarball.read_bytes()
    return f"""---
-
  title: "Netboot"
  branch: v3.20
  arch: riscv64
  version: {VERSION}
  flavor: alpine-netboot
  file: alpine-netboot-{VERSION}-riscv64.tar.gz
  sha256: {"0" * 64}
-
  title: "Mini root filesystem"
  desc: "Minimal root filesystem.
    For use in containers
    and minimal chroots."
  branch: v3.20
  arch: riscv64
  version: {VERSION}
  flavor: alpine-minirootfs
  file: {FILE}
  iso: {FILE}
  date: 2024-09-06
  time: 11:34:27
  size: {len(data)}
  sha256: {sha256 or hashlib.sha256(data).hexdigest()}
  sha512: {hashlib.sha512(data).hexdigest()}
"""


@pytest.fixture
def mirror_root(tmp_path: Path, alpine_tarball: Path) -> Path:
    """The fixture files in Alpine's mirror layout, for v3.20 and latest-stable."""
    root = tmp_path / "mirror"
    releases = root / RELEASES
    releases.mkdir(parents=True)
    for name in (FILE, f"{FILE}.sha256", f"{FILE}.sha512"):
        shutil.copyfile(alpine_tarball.with_name(name), releases / name)
    yaml = latest_releases(alpine_tarball)
    (releases / "latest-releases.yaml").write_text(yaml)
    stable = root / "latest-stable/releases/riscv64"
    stable.mkdir(parents=True)
    (stable / "latest-releases.yaml").write_text(yaml)
    return root


@pytest.fixture
def mirror(mirror_root: Path) -> Iterator[LoopbackMirror]:
    with loopback_mirror(mirror_root) as served:
        yield served


@pytest.fixture
def build(rvforge_cli: Cli, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``rvforge build --provider alpine ... -o OUT --no-audit`` with a private cache
    (``--isa`` spares probing QEMU for the machine's ISA, which an unaudited build does not
    need)."""
    cache = tmp_path / "cache"

    def run(*args: str, output: Path | None = None) -> subprocess.CompletedProcess[str]:
        out = output or tmp_path / "out.tar"
        return rvforge_cli("build", "--provider", "alpine", *args, "-o", str(out),
                           "--no-audit", "--isa", "rv64gc", env={"RVFORGE_CACHE_DIR": str(cache),
                                              "RVFORGE_ALPINE_MIRROR": ""})

    return run


def cached(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "alpine" / RELEASES / FILE


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``rvforge: error:`` line (asserting there is exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("rvforge: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def members(path: Path) -> dict[str, tuple[str, int, int, int, str, str]]:
    """name → (type, mode, uid, gid, link target, sha256 of data) of a tar archive."""
    result = {}
    with tarfile.open(path) as archive:
        for member in archive:
            data = archive.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            name = "/" + member.name.removeprefix("./").strip("/")
            result[name.rstrip("/") or "/"] = (
                member.type.decode(), member.mode, member.uid, member.gid, member.linkname,
                hashlib.sha256(data).hexdigest())
    return result


@pytest.mark.parametrize("release", ["3.20", "v3.20", VERSION, "latest-stable"])
def test_every_release_form_builds_the_real_tarball(
        build: Callable[..., subprocess.CompletedProcess[str]], mirror: LoopbackMirror,
        alpine_tarball: Path, tmp_path: Path, release: str) -> None:
    result = build("--mirror", mirror.url, "--release", release)
    assert result.returncode == 0, result.stderr
    expected = members(alpine_tarball)
    got = members(tmp_path / "out.tar")
    assert len(expected) == 515
    different = {name: (want, got.get(name)) for name, want in expected.items()
                 if name != "/" and got.get(name) != want}
    assert different == {}
    assert got["/etc/shadow"][2:4] == (0, 42)
    assert "no OpenPGP signature" in result.stderr  # the fixture has no .asc: a warning
    assert cached(tmp_path).is_file()


def test_default_mirror_comes_from_the_environment(
        rvforge_cli: Cli, mirror: LoopbackMirror, tmp_path: Path) -> None:
    result = rvforge_cli("build", "--provider", "alpine", "--release", VERSION, "-o",
                         str(tmp_path / "out.tar"), "--no-audit", "--isa", "rv64gc",
                         env={"RVFORGE_CACHE_DIR": str(tmp_path / "cache"),
                              "RVFORGE_ALPINE_MIRROR": mirror.url})
    assert result.returncode == 0, result.stderr
    assert any(path.endswith(FILE) for path, _ in mirror.requests)


def test_local_directory_mirror(build: Callable[..., subprocess.CompletedProcess[str]],
                                mirror_root: Path, tmp_path: Path) -> None:
    for url in (str(mirror_root), mirror_root.as_uri()):
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        result = build("--mirror", url, "--release", "3.20")
        assert result.returncode == 0, result.stderr
        assert cached(tmp_path).is_file()


def test_checksum_mismatch(build: Callable[..., subprocess.CompletedProcess[str]],
                           mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
                           tmp_path: Path) -> None:
    wrong = "1" * 64
    (mirror_root / RELEASES / "latest-releases.yaml").write_text(
        latest_releases(alpine_tarball, sha256=wrong))
    result = build("--mirror", mirror.url, "--release", "3.20")
    assert result.returncode == 2
    line = error_line(result)
    actual = hashlib.sha256(alpine_tarball.read_bytes()).hexdigest()
    assert FILE in line and f"expected {wrong}" in line and f"got {actual}" in line
    assert not cached(tmp_path).exists() and not (tmp_path / "out.tar").exists()
    assert list(cached(tmp_path).parent.iterdir()) == []  # no .part, no yaml either


def test_truncated_file_on_the_mirror(build: Callable[..., subprocess.CompletedProcess[str]],
                                      mirror: LoopbackMirror, mirror_root: Path,
                                      tmp_path: Path) -> None:
    image = mirror_root / RELEASES / FILE
    image.write_bytes(image.read_bytes()[:1_000_000])
    result = build("--mirror", mirror.url, "--release", "3.20")
    assert result.returncode == 2
    assert "got 1000000 bytes, expected 3254675" in error_line(result)
    assert not cached(tmp_path).exists() and not (tmp_path / "out.tar").exists()
    # without a size (exact version: only .sha256/.sha512), the digest catches it
    result = build("--mirror", mirror.url, "--release", VERSION)
    assert result.returncode == 2 and "mismatch" in error_line(result)
    assert list(cached(tmp_path).parent.iterdir()) == []


def test_dropped_connection_resumes(build: Callable[..., subprocess.CompletedProcess[str]],
                                    mirror: LoopbackMirror, tmp_path: Path) -> None:
    path = f"/{RELEASES}/{FILE}"
    mirror.faults[path] = Fault(drop_after=2_500_000)
    result = build("--mirror", mirror.url, "--release", "3.20")
    assert result.returncode == 0, result.stderr
    ranges = [r for p, r in mirror.requests if p == path]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert "download interrupted; retrying" in result.stderr


@pytest.mark.parametrize("release, fault, message", [
    ("3.20.9", None, "no .sha256 or .sha512 on"),
    (VERSION, f"/{RELEASES}/{FILE}", "not found on the mirror"),
    ("3.21", None, "v3.21/latest-releases.yaml: not found on the mirror"),
])
def test_missing_release(build: Callable[..., subprocess.CompletedProcess[str]],
                         mirror: LoopbackMirror, tmp_path: Path, release: str,
                         fault: str | None, message: str) -> None:
    if fault:
        mirror.faults[fault] = Fault(status=404)
    result = build("--mirror", mirror.url, "--release", release)
    assert result.returncode == 2
    assert message in error_line(result)
    assert not (tmp_path / "out.tar").exists()


def test_release_older_than_riscv64(build: Callable[..., subprocess.CompletedProcess[str]],
                                    mirror: LoopbackMirror) -> None:
    result = build("--mirror", mirror.url, "--release", "3.19")
    assert result.returncode == 2
    assert "riscv64 images from 3.20 on" in error_line(result)
    assert mirror.requests == []


def test_corrupt_cache_entry_is_fetched_again(
        build: Callable[..., subprocess.CompletedProcess[str]], mirror: LoopbackMirror,
        tmp_path: Path) -> None:
    assert build("--mirror", mirror.url, "--release", "3.20").returncode == 0
    entry = cached(tmp_path)
    entry.write_bytes(entry.read_bytes()[:-10] + b"corruption")
    mirror.requests.clear()
    result = build("--mirror", mirror.url, "--release", "3.20")
    assert result.returncode == 0, result.stderr
    assert "corrupt cache entry; fetching it again" in result.stderr
    assert (f"/{RELEASES}/{FILE}", None) in mirror.requests


def test_offline(build: Callable[..., subprocess.CompletedProcess[str]],
                 mirror_root: Path, tmp_path: Path) -> None:
    with loopback_mirror(mirror_root) as mirror:
        url = mirror.url
        result = build("--mirror", url, "--release", "3.20", "--offline")
        assert result.returncode == 2
        assert "not in the cache" in error_line(result) and "--offline" in error_line(result)
        assert mirror.requests == []
        assert build("--mirror", url, "--release", "3.20").returncode == 0
        assert build("--mirror", url, "--release", VERSION).returncode == 0
    # the server is gone: both forms build from the cache alone
    for release in ("3.20", VERSION):
        result = build("--mirror", url, "--release", release, "--offline",
                       output=tmp_path / f"offline-{release}.tar")
        assert result.returncode == 0, result.stderr


def test_source_tarball_with_sha256(build: Callable[..., subprocess.CompletedProcess[str]],
                                    alpine_tarball: Path) -> None:
    digest = hashlib.sha256(alpine_tarball.read_bytes()).hexdigest()
    assert build("--source", str(alpine_tarball), "--sha256", digest).returncode == 0
    result = build("--source", str(alpine_tarball), "--sha256", "0" * 64)
    assert result.returncode == 2 and f"got {digest}" in error_line(result)


@pytest.fixture
def signing_home(tmp_path: Path) -> Iterator[Path]:
    """A throwaway GnuPG home with one signing key."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg (GnuPG) is needed to make a test signing key: apt-get install gnupg "
                    "(.ci/run installs it)")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "test <t@example.invalid>",
                    "ed25519", "sign", "never"], check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   capture_output=True, check=False)


def test_release_signature(build: Callable[..., subprocess.CompletedProcess[str]],
                           mirror: LoopbackMirror, mirror_root: Path, signing_home: Path,
                           tmp_path: Path) -> None:
    gpg = ["gpg", "--homedir", str(signing_home), "--batch", "--pinentry-mode", "loopback"]
    image = mirror_root / RELEASES / FILE
    subprocess.run([*gpg, "--armor", "--detach-sign", str(image)], check=True,
                   capture_output=True)
    keyring = tmp_path / "test.gpg"
    keyring.write_bytes(subprocess.run([*gpg, "--export"], check=True,
                                       capture_output=True).stdout)
    # Alpine's key did not make this signature: refused, and nothing is kept
    result = build("--mirror", mirror.url, "--release", "3.20")
    assert result.returncode == 2
    assert "which is not in Alpine's release key" in error_line(result)
    assert not cached(tmp_path).exists()
    # with the signer's key it verifies
    result = build("--mirror", mirror.url, "--release", "3.20", "--keyring", str(keyring))
    assert result.returncode == 0, result.stderr
    assert "release signature verified" in result.stderr
    # the explicit opt-out
    result = build("--mirror", mirror.url, "--release", "3.20", "--no-verify-signature")
    assert result.returncode == 0 and "signature NOT checked" in result.stderr


def test_packages_from_a_signed_repository(build: Callable[..., subprocess.CompletedProcess[str]],
                                           alpine_tarball: Path, tmp_path: Path) -> None:
    """--package through the CLI: a repository signed with a test key that the source
    tarball trusts, served over HTTP; the package branch comes from /etc/alpine-release."""
    key_name = "rvforge-cli-test.rsa.pub"
    key = new_key()
    source = tmp_path / "rootfs.tar.gz"
    with tarfile.open(alpine_tarball) as original, tarfile.open(source, "w:gz") as out:
        for member in original:
            out.addfile(member, original.extractfile(member) if member.isreg() else None)
        pem = public_pem(key)
        info = tarfile.TarInfo(f"./etc/apk/keys/{key_name}")
        info.size, info.mode = len(pem), 0o644
        out.addfile(info, io.BytesIO(pem))
    hello = build_apk(key, key_name, "hello", "1.0-r0",
                      files=[FileSpec("usr/bin/hello", b"\x7fELF", mode=0o755)],
                      depends=["so:libc.musl-riscv64.so.1", "cmd:sh"],
                      scripts={".post-install": b"#!/bin/sh\necho hello\n"})
    write_repository(tmp_path / "repo", "v3.20", "main", key, key_name, [hello])
    with loopback_mirror(tmp_path / "repo") as mirror:
        result = build("--source", str(source), "--mirror", mirror.url, "--package", "hello")
        assert result.returncode == 0, result.stderr
        assert "repository index missing" in result.stderr  # no community: a warning
        missing = build("--source", str(source), "--mirror", mirror.url, "--package", "nosuch",
                        output=tmp_path / "missing.tar")
    assert missing.returncode == 2
    assert "cannot install: world → nosuch: no package provides it" in error_line(missing)
    assert not (tmp_path / "missing.tar").exists()
    with tarfile.open(tmp_path / "out.tar") as archive:
        binary = archive.getmember("./usr/bin/hello")
        assert (binary.mode, binary.uid, binary.gid) == (0o755, 0, 0)
        installed = archive.extractfile("./lib/apk/db/installed").read().decode()  # type: ignore[union-attr]
        world = archive.extractfile("./etc/apk/world").read().decode()  # type: ignore[union-attr]
        runner = archive.getmember("./etc/rvforge/first-boot.d/50-apk-scripts")
    assert f"C:{hello.checksum}\nP:hello\nV:1.0-r0\n" in installed
    assert "\nR:hello\na:0:0:755\n" in installed
    assert world.split() == ["alpine-baselayout", "alpine-keys", "apk-tools", "busybox",
                             "hello", "libc-utils"]
    assert runner.mode == 0o755
