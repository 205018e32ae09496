"""Values from a Debian mirror are data until validated: a Release's SHA256 lines, a
Packages entry's Filename, SHA256, Size, Package, Version and Architecture, and the mirror
URL itself. Each malformed one is an error naming the field, before it becomes a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvforge import BuildContext, InputError, UsageError
from rvforge.registry import build_registry

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.index import Package
from rvforge_debootstrap.mirror import choose_mirror
from rvforge_debootstrap.release import parse_release

GOOD = "a" * 64


def release_text(line: str) -> str:
    return ("Suite: stable\nCodename: trixie\nArchitectures: riscv64\nComponents: main\n"
            f"SHA256:\n {line}\n")


def test_a_well_formed_release_line_is_kept() -> None:
    release = parse_release(release_text(f"{GOOD} 123 main/binary-riscv64/Packages.xz"))
    assert release.files["main/binary-riscv64/Packages.xz"].size == 123


@pytest.mark.parametrize("line", [
    f"{GOOD} 123 ../../../etc/passwd",
    f"{GOOD} 123 /etc/passwd",
    f"{GOOD} 123 main/../../x",
    f"{GOOD} 12x main/binary-riscv64/Packages.xz",
    f"{GOOD} {'9' * 40} main/binary-riscv64/Packages.xz",
    f"{'z' * 64} 123 main/binary-riscv64/Packages.xz",
    f"{GOOD[:10]} 123 main/binary-riscv64/Packages.xz",
])
def test_a_malformed_release_line_is_refused(line: str) -> None:
    with pytest.raises(InputError, match=r"InRelease \(http://m\): malformed SHA256 line"):
        parse_release(release_text(line), "InRelease (http://m)")


@pytest.mark.parametrize("field, value", [
    ("name", "../../x"), ("name", "Upper"), ("version", "1.0/../../x"), ("version", ""),
    ("architecture", "../riscv64"), ("architecture", "riscv64/x"),
])
def test_a_package_field_that_names_the_cache_file_is_checked(field: str, value: str) -> None:
    values = {"name": "hello", "version": "1:2.0-1", "architecture": "riscv64", field: value}
    package = Package(**values)
    with pytest.raises(InputError, match="is not a Debian one; refusing it"):
        _ = package.deb_name


@pytest.fixture
def archive(tmp_path: Path) -> DebianArchive:
    ctx = BuildContext(build_registry(), cache_dir=tmp_path / "cache",
                       scratch_dir=tmp_path / "scratch")
    return DebianArchive(ctx, mirror=str(tmp_path / "mirror"), suite="trixie")


@pytest.mark.parametrize("field, value, message", [
    ("filename", "../../../../etc/passwd", "Filename '../../../../etc/passwd' is not a pool"),
    ("filename", "/etc/passwd", "is not a pool path"),
    ("filename", "pool/main/../../../x.deb", "is not a pool path"),
    ("filename", "x.deb", "is not a pool path"),
    ("sha256", "../" + GOOD[3:], "SHA256 '../"),
    ("sha256", GOOD.upper(), "is not 64 hex digits"),
    ("size", "-1", "Size '-1' is not a number"),
])
def test_a_package_entry_is_checked_before_download(
        archive: DebianArchive, tmp_path: Path, field: str, value: str, message: str) -> None:
    values = {"name": "hello", "version": "2.0-1", "architecture": "riscv64",
              "filename": "pool/main/h/hello/hello_2.0-1_riscv64.deb", "sha256": GOOD,
              "size": "10", field: value}
    with pytest.raises(InputError, match="trixie main/riscv64 index of .*: hello's") as info:
        archive.download(Package(**values))
    assert message in str(info.value)
    with pytest.raises(InputError):
        archive.unpacked_dir(Package(**values))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("suite", ["../../x", "/abs", "trixie/../..", ""])
def test_a_suite_that_would_become_a_path_is_refused(tmp_path: Path, suite: str) -> None:
    ctx = BuildContext(build_registry(), cache_dir=tmp_path / "cache")
    with pytest.raises(UsageError, match="not a Debian suite"):
        DebianArchive(ctx, mirror=str(tmp_path), suite=suite)


@pytest.mark.parametrize("url, message", [
    ("http://[::1", "not a valid URL"), ("ftp://host/debian", "unsupported scheme"),
    ("https://", "names no host"),
])
def test_a_malformed_mirror_url_is_a_usage_error(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        choose_mirror(url)
