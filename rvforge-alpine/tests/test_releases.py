"""--release parsing, latest-releases.yaml and checksum files."""

from __future__ import annotations

import pytest

from rvforge import InputError, UsageError

from rvforge_alpine.releases import (
    ReleaseRequest,
    from_latest_releases,
    parse_checksum_file,
    parse_yaml_list,
)

SHA256 = "290d402a3e2770a74e86caf1e43205dbf337b9aec1610c6c6d8ffbd2d52796a1"
YAML = f"""---
-
  title: "Netboot"
  branch: v3.20
  arch: riscv64
  version: 3.20.3
  flavor: alpine-netboot
  file: alpine-netboot-3.20.3-riscv64.tar.gz
  sha256: {'0' * 64}
-
  title: "Mini root filesystem"
  desc: "Minimal root filesystem. # not a comment inside quotes"
  branch: v3.20
  arch: riscv64
  version: 3.20.3
  flavor: alpine-minirootfs
  file: alpine-minirootfs-3.20.3-riscv64.tar.gz
  iso: alpine-minirootfs-3.20.3-riscv64.tar.gz
  date: 2024-09-06
  time: 11:34:27
  size: 3254675
  sha256: {SHA256}
"""


@pytest.mark.parametrize("text, branch, version", [
    ("latest-stable", "latest-stable", None), ("edge", "edge", None),
    ("3.21", "v3.21", None), ("v3.21", "v3.21", None), ("3.21.2", "v3.21", "3.21.2"),
    ("v3.20.3", "v3.20", "3.20.3"), ("3.22.0_rc1", "v3.22", "3.22.0_rc1"),
])
def test_release_forms(text: str, branch: str, version: str | None) -> None:
    assert ReleaseRequest.parse(text) == ReleaseRequest(branch, version)


@pytest.mark.parametrize("text", ["3.19", "v3.18.4", "2.7"])
def test_release_before_riscv64_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="riscv64 images from 3.20 on"):
        ReleaseRequest.parse(text)


@pytest.mark.parametrize("text", ["stable", "3", "3.21.2.1", "v3.x"])
def test_malformed_release(text: str) -> None:
    with pytest.raises(UsageError, match="expected latest-stable, edge"):
        ReleaseRequest.parse(text)


def test_latest_releases_picks_the_minirootfs() -> None:
    release = from_latest_releases(YAML, "latest-stable", label="y")
    assert release.branch == "v3.20"
    assert release.version == "3.20.3"
    assert release.file == "alpine-minirootfs-3.20.3-riscv64.tar.gz"
    assert release.digests == {"sha256": SHA256}
    assert release.size == 3254675


def test_yaml_values_keep_colons_and_quotes() -> None:
    entries = parse_yaml_list(YAML, label="y")
    assert entries[1]["time"] == "11:34:27"
    assert entries[1]["desc"] == "Minimal root filesystem. # not a comment inside quotes"
    assert entries[1]["title"] == "Mini root filesystem"


def test_yaml_without_minirootfs() -> None:
    with pytest.raises(InputError, match="no alpine-minirootfs entry"):
        from_latest_releases(YAML.split("-\n  title: \"Mini")[0], "v3.20", label="y")


def test_yaml_entry_without_digest_is_refused() -> None:
    text = YAML.replace(f"  sha256: {SHA256}\n", "")
    with pytest.raises(InputError, match="neither sha256 nor sha512"):
        from_latest_releases(text, "v3.20", label="y")


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(InputError, match="line 2"):
        parse_yaml_list("-\n  just words\n", label="y")


def test_checksum_file_in_mkimage_format(alpine_tarball) -> None:  # type: ignore[no-untyped-def]
    text = alpine_tarball.with_name(alpine_tarball.name + ".sha256").read_text()
    assert parse_checksum_file(text, alpine_tarball.name, "sha256", label="x") == SHA256
    with pytest.raises(InputError, match="no sha256 digest for other.tar.gz"):
        parse_checksum_file(text, "other.tar.gz", "sha256", label="x")
