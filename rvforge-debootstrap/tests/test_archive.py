"""The Debian archive against the real mirror: signed index, verified downloads, .deb
extraction, the ``debian`` kernel source; and mirror discovery on hand-written sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from rvforge import BuildContext, EntryKind, Tree, UsageError

from rvforge_debootstrap.archive import (
    DebianArchive,
    UnknownPackageError,
    extract_deb,
    extract_deb_to_dir,
    read_control,
)
from rvforge_debootstrap.mirror import choose_mirror, host_sources

network = pytest.mark.network


@network
def test_release_is_verified_and_index_lists_riscv64_packages(debian_archive: DebianArchive
                                                              ) -> None:
    release = debian_archive.release()
    assert release.codename == "trixie"
    assert release.version.startswith("13.")
    libc = debian_archive.index().get("libc6")
    assert libc is not None and libc.architecture == "riscv64"
    assert libc.filename.endswith("_riscv64.deb") and len(libc.sha256) == 64


@network
def test_unknown_package_names_it(debian_archive: DebianArchive) -> None:
    with pytest.raises(UnknownPackageError, match="'busybox-statik'.*busybox-static"):
        debian_archive.package("busybox-statik")


@network
def test_download_and_extract_libc6_into_a_tree(debian_archive: DebianArchive,
                                                tmp_path: Path) -> None:
    deb = debian_archive.download("libc6")
    assert deb.parent == debian_archive.deb_cache
    tree = Tree()
    listed = extract_deb(deb, tree, tmp_path)
    assert "/usr/lib/riscv64-linux-gnu/libc.so.6" in listed
    loader = tree.lookup("/usr/lib/ld-linux-riscv64-lp64d.so.1")
    assert loader is not None and tree.read_bytes(loader.path)[:4] == b"\x7fELF"
    assert tree["/usr"].kind is EntryKind.DIR and tree["/usr"].uid == 0
    control = read_control(deb)
    assert b"Package: libc6" in control["control"]


@network
def test_parallel_downloads_and_zstd_or_xz_members(debian_archive: DebianArchive,
                                                   tmp_path: Path) -> None:
    paths = debian_archive.download_many(["busybox-static", "libopenblas0-pthread"])
    tree = Tree()
    for path in paths.values():
        extract_deb(path, tree, tmp_path)
    busybox = tree.lookup("/usr/bin/busybox")
    assert busybox is not None and busybox.mode == 0o755 and busybox.size > 500_000


@network
def test_extract_deb_to_dir_writes_host_files(debian_archive: DebianArchive,
                                              tmp_path: Path) -> None:
    written = extract_deb_to_dir(debian_archive.download("base-files"), tmp_path / "root")
    assert "/etc/debian_version" in written
    assert (tmp_path / "root/etc/debian_version").read_text().startswith("13.")


@network
def test_debian_kernel_source(ctx: BuildContext) -> None:
    source = ctx.registry.kernels.get("debian")
    kernel = source().fetch(source.Options(), ctx)
    assert kernel.image.name.startswith("vmlinux-") and kernel.image.stat().st_size > 10 << 20
    assert kernel.version.endswith("-riscv64")
    assert kernel.modules is not None
    modules = kernel.modules / "lib/modules" / kernel.version
    assert (modules / "modules.order").is_file()
    assert (modules / "kernel/drivers/block/virtio_blk.ko.xz").is_file()
    again = source().fetch(source.Options(), ctx)
    assert again == kernel


def test_mirror_from_deb822_sources_skips_security_and_third_party(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RVFORGE_DEBIAN_MIRROR", raising=False)
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "a-vendor.sources").write_text(
        "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: nodistro\nComponents: main\n")
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.invalid/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    assert choose_mirror(None, apt_etc=tmp_path) == "http://mirror.invalid/debian"
    assert choose_mirror("file:///srv/mirror/", apt_etc=tmp_path) == "file:///srv/mirror"
    monkeypatch.setenv("RVFORGE_DEBIAN_MIRROR", "http://env.invalid/debian")
    assert choose_mirror(None, apt_etc=tmp_path) == "http://env.invalid/debian"


def test_mirror_from_one_line_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RVFORGE_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.invalid/debian trixie main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian trixie main contrib\n")
    assert [e.uri for e in host_sources(tmp_path)] == ["http://one.invalid/debian"]
    assert choose_mirror(None, apt_etc=tmp_path) == "http://one.invalid/debian"


def test_no_mirror_anywhere_asks_for_mirror(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RVFORGE_DEBIAN_MIRROR", raising=False)
    with pytest.raises(UsageError, match="--mirror"):
        choose_mirror(None, apt_etc=tmp_path)
