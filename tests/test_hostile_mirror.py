"""A hostile mirror on 127.0.0.1 (Alpine's layout, the real minirootfs): every value it
sends is data until validated, and every download is bounded in size and time. Each attack
goes through the CLI and must end in exit 2 with one line naming the field or the limit,
with nothing written outside the output and the cache."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.testing import Fault, LoopbackMirror, assert_one_line_error, loopback_mirror

from rvforge_alpine.testing import build_apk, build_index, new_key, public_pem

VERSION = "3.20.3"
FILE = f"alpine-minirootfs-{VERSION}-riscv64.tar.gz"
RELEASES = "v3.20/releases/riscv64"
YAML = "/latest-stable/releases/riscv64/latest-releases.yaml"

Build = Callable[..., subprocess.CompletedProcess[str]]


def latest_releases(data: bytes, **fields: str | None) -> str:
    """A ``latest-releases.yaml`` minirootfs entry for ``data``, ``fields`` replacing (or,
    when ``None``, dropping) its values."""
    values: dict[str, str | None] = {
        "branch": "v3.20", "arch": "riscv64", "version": VERSION,
        "flavor": "alpine-minirootfs", "file": FILE, "size": str(len(data)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    values.update(fields)
    return "---\n-\n" + "".join(f"  {k}: {v}\n" for k, v in values.items() if v is not None)


def snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture
def mirror_root(tmp_path: Path, alpine_tarball: Path) -> Path:
    root = tmp_path / "mirror"
    for branch in ("v3.20", "latest-stable"):
        releases = root / branch / "releases" / "riscv64"
        releases.mkdir(parents=True)
        shutil.copyfile(alpine_tarball, releases / FILE)
        (releases / "latest-releases.yaml").write_text(
            latest_releases(alpine_tarball.read_bytes()))
    return root


@pytest.fixture
def mirror(mirror_root: Path) -> Iterator[LoopbackMirror]:
    with loopback_mirror(mirror_root) as served:
        yield served


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Build]:
    """``rvforge build --provider alpine ARGS -o OUT`` in-process with a private cache;
    afterwards, asserts that nothing appeared in ``tmp_path`` outside the output directory,
    the cache and the mirror (the attacks aim at ``tmp_path`` itself)."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(cache))
    monkeypatch.setenv("RVFORGE_ALPINE_MIRROR", "")
    monkeypatch.setattr("rvforge.net.download.BACKOFF", 0.01)
    before = snapshot(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(app, ["--quiet", "build", "--provider", "alpine", *args,
                                          "-o", str(out / "image.tar"), "--no-audit",
                                          "--isa", "rv64gc"])
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout,
                                           result.stderr)

    yield run
    allowed = (out, cache, tmp_path / "mirror")
    escaped = [p for p in snapshot(tmp_path) - before
               if not any(p == a or p.is_relative_to(a) for a in allowed)]
    assert escaped == []
    assert not list(out.glob("*")), "a refused build left output"
    assert not list(cache.rglob("*.part")), "a refused download left a .part file"


def write_yaml(root: Path, text: str) -> None:
    (root / "latest-stable/releases/riscv64/latest-releases.yaml").write_text(text)


@pytest.mark.parametrize("field, value, message", [
    ("branch", "../../escaped", "branch '../../escaped' is not an Alpine branch"),
    ("branch", "v3.20/../../../escaped", "is not an Alpine branch"),
    ("branch", "{tmp}/absolute", "is not an Alpine branch"),
    ("branch", "edge\x1b[2J", "is not an Alpine branch"),
    ("file", "../../../escaped.tar.gz", "file '../../../escaped.tar.gz' is not a plain file"),
    ("file", "sub/dir.tar.gz", "is not a plain file name"),
    ("file", ".hidden.tar.gz", "is not a plain file name"),
    ("file", "{tmp}/absolute.tar.gz", "is not a plain file name"),
    ("version", "../../x", "version '../../x' is not an Alpine version"),
    ("version", "3.20.3/../../../x", "is not an Alpine version"),
])
def test_a_mirror_value_that_would_become_a_path_is_refused(
        build: Build, mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
        tmp_path: Path, field: str, value: str, message: str) -> None:
    value = value.replace("{tmp}", str(tmp_path))
    write_yaml(mirror_root, latest_releases(alpine_tarball.read_bytes(), **{field: value}))
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, message)
    assert f"latest-stable/latest-releases.yaml ({mirror.url}/" in result.stderr


@pytest.mark.parametrize("location, message", [
    ("file:///etc/passwd", "redirected"),
    ("ftp://127.0.0.1/x.tar.gz", "which is not an http(s) URL"),
    ("http://[::1/x", "(Invalid IPv6 URL)"),
    ("", "which is not an http(s) URL"),
    (f"/{RELEASES}/{FILE}", "more than 5 redirects"),
])
def test_a_redirect_is_followed_only_to_an_http_url(
        build: Build, mirror: LoopbackMirror, location: str, message: str) -> None:
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(redirect=location, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, message)
    assert FILE in result.stderr


def test_an_endless_index_is_cut_at_the_index_cap(build: Build, mirror: LoopbackMirror,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rvforge.net.download.INDEX_CAP", 1 << 20)
    mirror.faults[YAML] = Fault(endless=True, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, f"{mirror.url}{YAML} is larger than the 1048576 bytes "
                                     "allowed")


def test_an_endless_file_is_cut_at_the_size_its_index_states(
        build: Build, mirror: LoopbackMirror, alpine_tarball: Path) -> None:
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(endless=True, times=100)
    result = build("--mirror", mirror.url)
    size = alpine_tarball.stat().st_size
    assert_one_line_error(result, 2, f"{FILE}: {mirror.url}/{RELEASES}/{FILE} is larger than "
                                     f"the {size} bytes allowed")


def test_an_endless_file_of_unstated_size_is_cut_at_the_file_cap(
        build: Build, mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rvforge.net.download.FILE_CAP", 8 << 20)
    write_yaml(mirror_root, latest_releases(alpine_tarball.read_bytes(), size=None))
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(endless=True, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, f"is larger than the {8 << 20} bytes allowed")


@pytest.mark.parametrize("path", [YAML, f"/{RELEASES}/{FILE}"])
def test_a_dripping_mirror_hits_the_overall_deadline(
        build: Build, mirror: LoopbackMirror, monkeypatch: pytest.MonkeyPatch,
        path: str) -> None:
    """One byte every 0.2 s never trips the 60 s per-read timeout; the deadline cuts it."""
    monkeypatch.setenv("RVFORGE_FETCH_DEADLINE", "1.5")
    monkeypatch.setattr("rvforge.net.download.MIN_RATE", 1 << 40)
    mirror.faults[path] = Fault(drip=0.2, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, "took longer than the 1.5 s deadline")
    assert f"{mirror.url}{path}" in result.stderr


@pytest.mark.parametrize("url, message", [
    ("http://[::1", "--mirror 'http://[::1': not a valid URL"),
    ("http://127.0.0.1:port/alpine", "not a valid URL"),
    ("http:///alpine", "the URL names no host"),
    ("ftp://127.0.0.1/alpine", "unsupported scheme 'ftp'"),
    ("http://127.0.0.1/al\npine", "contains control characters"),
])
def test_a_malformed_mirror_url_is_one_line(build: Build, url: str, message: str) -> None:
    assert_one_line_error(build("--mirror", url), 2, message)


# -- package indexes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_source(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Path, object, str]:
    """The minirootfs with a test key added to /etc/apk/keys (a repository signed with it
    is trusted), its key and key name."""
    key, key_name = new_key(), "hostile-test.rsa.pub"
    source = tmp_path_factory.mktemp("signed") / "rootfs.tar.gz"
    with tarfile.open(alpine_tarball) as src, tarfile.open(source, "w:gz") as out:
        for member in src:
            out.addfile(member, src.extractfile(member) if member.isreg() else None)
        pem = public_pem(key)
        info = tarfile.TarInfo(f"./etc/apk/keys/{key_name}")
        info.size, info.mode = len(pem), 0o644
        out.addfile(info, io.BytesIO(pem))
    return source, key, key_name


@pytest.mark.parametrize("field, value, message", [
    ("P", "../../../escaped", "P:'../../../escaped' is not an apk package name"),
    ("P", "/abs", "is not an apk package name"),
    ("V", "1.0/../../../../escaped", "is not an apk package version"),
    ("V", "..", "is not an apk package version"),
])
def test_an_index_record_that_would_become_a_path_is_refused(
        build: Build, signed_source: tuple[Path, object, str], tmp_path: Path, field: str,
        value: str, message: str) -> None:
    source, key, key_name = signed_source
    apk = build_apk(key, key_name, "hello", "1.0-r0")  # type: ignore[arg-type]
    lines = [(k, value if k == field else v) for k, v in apk.index_lines]
    text = "".join(f"{k}:{v}\n" for k, v in lines) + "\n"
    directory = tmp_path / "mirror" / "v3.20" / "main" / "riscv64"
    directory.mkdir(parents=True)
    (directory / "APKINDEX.tar.gz").write_bytes(
        build_index(key, key_name, [apk], text=text))  # type: ignore[arg-type]
    with loopback_mirror(tmp_path / "mirror") as served:
        result = build("--source", str(source), "--mirror", served.url, "--package", "hello")
    assert_one_line_error(result, 2, message)
    assert f"v3.20/main/riscv64/APKINDEX.tar.gz ({served.url}/" in result.stderr


# -- the deadline covers connecting, the headers and the body -----------------------------


@pytest.mark.parametrize("fault", [Fault(header_drip=0.2, times=100),
                                   Fault(continues=True, times=100)],
                         ids=["header-drip", "endless-100-continue"])
@pytest.mark.parametrize("path", [YAML, f"/{RELEASES}/{FILE}"])
def test_headers_that_never_end_hit_the_overall_deadline(
        build: Build, mirror: LoopbackMirror, monkeypatch: pytest.MonkeyPatch,
        fault: Fault, path: str) -> None:
    """Neither a header dripped a byte at a time nor ``100 Continue`` after ``100 Continue``
    trips a per-read timeout; the deadline, counted from the request's start, cuts them."""
    monkeypatch.setenv("RVFORGE_FETCH_DEADLINE", "2")
    monkeypatch.setattr("rvforge.net.download.MIN_RATE", 1 << 40)
    mirror.faults[path] = fault
    started = time.monotonic()
    result = build("--mirror", mirror.url)
    assert time.monotonic() - started < 10
    assert_one_line_error(result, 2, "took longer than the 2 s deadline")
    assert f"{mirror.url}{path}" in result.stderr


@pytest.mark.parametrize("deadline", ["1e10", "99999999999999999999"])
def test_a_huge_deadline_is_still_enforced_as_the_largest_one(
        build: Build, mirror: LoopbackMirror, monkeypatch: pytest.MonkeyPatch,
        deadline: str) -> None:
    """Once the watchdog's wait overflowed (``OverflowError`` in its thread) and nothing
    was enforced; now a huge deadline is capped, and the watchdog is running."""
    monkeypatch.setenv("RVFORGE_FETCH_DEADLINE", deadline)
    monkeypatch.setattr("rvforge.net.download.MAX_DEADLINE", 1.5)
    monkeypatch.setattr("rvforge.net.download.MIN_RATE", 1 << 40)
    mirror.faults[YAML] = Fault(header_drip=0.2, times=100)
    started = time.monotonic()
    result = build("--mirror", mirror.url)
    assert time.monotonic() - started < 10
    assert_one_line_error(result, 2, "took longer than the 1.5 s deadline")


@pytest.mark.parametrize("deadline", ["²", "-5", "nan", "inf", "0", "1_0", "٣"])
def test_a_deadline_that_is_not_an_ascii_number_is_one_line(
        build: Build, mirror: LoopbackMirror, monkeypatch: pytest.MonkeyPatch,
        deadline: str) -> None:
    monkeypatch.setenv("RVFORGE_FETCH_DEADLINE", deadline)
    assert_one_line_error(build("--mirror", mirror.url), 2,
                          "$RVFORGE_FETCH_DEADLINE")


# -- numbers in what the mirror sends -----------------------------------------------------


@pytest.mark.parametrize("length", ["12²", "¹²", "1, 2", "-1", "0x10", "1" * 40])
@pytest.mark.parametrize("stated", [True, False], ids=["size-stated", "size-unstated"])
def test_a_content_length_that_is_not_an_ascii_number_is_one_line(
        build: Build, mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
        length: str, stated: bool) -> None:
    """(HTTP headers are Latin-1: the digits of other scripts cannot be sent in one.)"""
    if not stated:
        write_yaml(mirror_root, latest_releases(alpine_tarball.read_bytes(), size=None))
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(length=length, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, "Content-Length")
    assert FILE in result.stderr


def test_a_content_length_sent_twice_alike_is_accepted(
        tmp_path: Path, mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``N, N`` (one header sent twice, as urllib3 merges it) is the number N."""
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RVFORGE_FETCH_DEADLINE", "30")
    write_yaml(mirror_root, latest_releases(alpine_tarball.read_bytes(), size=None))
    size = alpine_tarball.stat().st_size
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(length=f"{size}, {size}", times=100)
    result = CliRunner().invoke(app, ["--quiet", "build", "--provider", "alpine", "--mirror",
                                      mirror.url, "-o", str(tmp_path / "out" / "image.tar"),
                                      "--no-audit", "--isa", "rv64gc"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "image.tar").is_file()


@pytest.mark.parametrize("size", ["12²", "٣", "1" * 20])
def test_a_release_size_that_is_not_an_ascii_number_is_not_used(
        build: Build, mirror: LoopbackMirror, mirror_root: Path, alpine_tarball: Path,
        monkeypatch: pytest.MonkeyPatch, size: str) -> None:
    """A size that is no number bounds nothing (FILE_CAP does); it is never a traceback."""
    monkeypatch.setattr("rvforge.net.download.FILE_CAP", 8 << 20)
    write_yaml(mirror_root, latest_releases(alpine_tarball.read_bytes(), size=size))
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(endless=True, times=100)
    result = build("--mirror", mirror.url)
    assert_one_line_error(result, 2, f"is larger than the {8 << 20} bytes allowed")


@pytest.mark.parametrize("atom", ["hello>1²", "hello>=1.٣", "hello~1.0_rc²"])
def test_a_package_version_with_a_non_ascii_digit_is_one_line_and_quick(
        build: Build, signed_source: tuple[Path, object, str], tmp_path: Path,
        atom: str) -> None:
    """apk's version tokenizer looped for ever on a superscript digit (100% CPU)."""
    source, key, key_name = signed_source
    apk = build_apk(key, key_name, "hello", "1.0-r0")  # type: ignore[arg-type]
    directory = tmp_path / "mirror" / "v3.20" / "main" / "riscv64"
    directory.mkdir(parents=True)
    (directory / "APKINDEX.tar.gz").write_bytes(
        build_index(key, key_name, [apk]))  # type: ignore[arg-type]
    started = time.monotonic()
    with loopback_mirror(tmp_path / "mirror") as served:
        result = build("--source", str(source), "--mirror", served.url, "--package", atom)
    assert time.monotonic() - started < 30
    assert_one_line_error(result, 2, "invalid version")
    assert repr(atom) in result.stderr


def test_an_index_dependency_with_a_non_ascii_digit_is_one_line_and_quick(
        build: Build, signed_source: tuple[Path, object, str], tmp_path: Path) -> None:
    source, key, key_name = signed_source
    apk = build_apk(key, key_name, "hello", "1.0-r0")  # type: ignore[arg-type]
    text = "".join(f"{k}:{v}\n" for k, v in apk.index_lines) + "D:musl>1²\n\n"
    directory = tmp_path / "mirror" / "v3.20" / "main" / "riscv64"
    directory.mkdir(parents=True)
    (directory / "APKINDEX.tar.gz").write_bytes(
        build_index(key, key_name, [apk], text=text))  # type: ignore[arg-type]
    started = time.monotonic()
    with loopback_mirror(tmp_path / "mirror") as served:
        result = build("--source", str(source), "--mirror", served.url, "--package", "hello")
    assert time.monotonic() - started < 30
    assert_one_line_error(result, 2, "'musl>1²' has an invalid version")


# -- files rvforge is given to read --------------------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "missing"])
def test_a_keyring_that_is_not_a_regular_file_is_one_line_not_a_hang(
        build: Build, alpine_tarball: Path, tmp_path: Path, kind: str) -> None:
    """``--keyring /dev/zero`` was read without limit, a FIFO blocked for ever."""
    inputs = tmp_path / "mirror" / "inputs"  # the fixture allows new files under mirror/
    inputs.mkdir(parents=True)
    source = inputs / FILE
    shutil.copyfile(alpine_tarball, source)
    (inputs / f"{FILE}.asc").write_bytes(b"not checked before the keyring is read")
    keyring = {"device": Path("/dev/zero"), "fifo": inputs / "fifo.gpg",
               "directory": inputs, "missing": inputs / "nope.gpg"}[kind]
    if kind == "fifo":
        os.mkfifo(keyring)
    started = time.monotonic()
    result = build("--source", str(source), "--keyring", str(keyring))
    assert time.monotonic() - started < 30
    assert_one_line_error(result, 2, f"{keyring}: ")
    assert "--keyring" in result.stderr


def test_a_retry_that_recovers_prints_nothing_under_quiet(
        tmp_path: Path, mirror: LoopbackMirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RVFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("rvforge.net.download.BACKOFF", 0.01)
    mirror.faults[f"/{RELEASES}/{FILE}"] = Fault(drop_after=100_000)
    mirror.faults[YAML] = Fault(status=503)
    result = CliRunner().invoke(app, ["--quiet", "build", "--provider", "alpine", "--mirror",
                                      mirror.url, "-o", str(tmp_path / "out" / "image.tar"),
                                      "--no-audit", "--isa", "rv64gc"])
    assert result.exit_code == 0, result.stderr
    assert [p for p, _ in mirror.requests].count(f"/{RELEASES}/{FILE}") == 2  # it did retry
    assert "retrying" not in result.stderr and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "[warning" in line] == [
        line for line in result.stderr.splitlines() if "OpenPGP signature" in line]
