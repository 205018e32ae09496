"""``rvforge cache list`` / ``rvforge cache clean`` on a private cache (``XDG_CACHE_HOME``
under tmp_path), through the real CLI: the entries a real build leaves (ELF facts, the QEMU
ISA probe) and entries in the layouts of the Debian, Alpine and QEMU plugins, a third-party
plugin's, an unclaimed directory, a download of a running process, a file a running
process holds open, and symlinks planted to lead out of the cache — which are listed,
never followed and never removed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rvforge.testing import assert_one_line_error

DAY = 86400.0
THIRD_PARTY = """
    import rvforge

    class Mirror(rvforge.Provider):
        name = "mirrorthing"
        summary = "test provider with a cache"
        cache_entries = {"mirrorthing/blobs/*": "downloads", "mirrorthing/state.db": "indexes"}

        def provide(self, options, ctx):
            return rvforge.Tree()

    @rvforge.hookimpl
    def rvforge_register_providers(register):
        register(Mirror)
"""


@dataclass
class Cache:
    """A private cache with planted entries, and the environment that points at it."""

    root: Path
    env: dict[str, str]
    outside: Path
    holder: subprocess.Popen[bytes]
    writer: subprocess.Popen[bytes]

    def write(self, relative: str, data: bytes = b"x", *, age_days: float = 0,
              entry: str | None = None) -> Path:
        """Write a file; ``age_days`` back-dates it and everything in ``entry`` (default:
        the file itself) to that age."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if age_days:
            when = time.time() - age_days * DAY
            top = self.root / (entry or relative)
            for item in [*top.rglob("*"), top]:
                os.utime(item, (when, when), follow_symlinks=False)
        return path


def install_third_party(site: Path) -> None:
    (site / "mirrorthing.py").write_text(textwrap.dedent(THIRD_PARTY))
    info = site / "mirrorthing-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mirrorthing\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rvforge]\nmirrorthing = mirrorthing\n")


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path) -> Path:
    """The cache a real build leaves: the ELF facts of the audit and the probe of
    qemu-virt's CPU (built once; each test gets a copy)."""
    xdg = tmp_path_factory.mktemp("built-cache")
    subprocess.run([str(Path(sys.executable).with_name("rvforge")), "build", "--provider",
                    "local", "--source", str(alpine_tarball), "-o", str(xdg / "alpine.cpio.gz")],
                   check=True, capture_output=True,
                   env={**os.environ, "XDG_CACHE_HOME": str(xdg), "RVFORGE_CACHE_DIR": ""})
    return xdg / "rvforge"


@pytest.fixture
def cache(tmp_path: Path, built_cache: Path) -> Iterator[Cache]:
    site = tmp_path / "site"
    site.mkdir()
    install_third_party(site)
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "PYTHONPATH": str(site),
           "RVFORGE_CACHE_DIR": ""}
    root = tmp_path / "xdg" / "rvforge"
    shutil.copytree(built_cache, root, symlinks=True)
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_text("not the cache's\n")
    (outside / "dir" / "kept").write_text("also not\n")
    writer = subprocess.Popen(["sleep", "300"])  # the pid of a download under way
    planted = Cache(root, env, outside, writer, writer)
    planted.write("debian/debs/old_1.0_riscv64.deb", b"o" * 1000, age_days=10)
    planted.write("debian/debs/new_1.0_riscv64.deb", b"n" * 2000)
    planted.write(f"debian/debs/.big_1.0_riscv64.deb.{writer.pid}.part", b"p" * 300)
    planted.write("debian/debs/.gone_1.0_riscv64.deb.999999999.part", b"g", age_days=1)
    planted.write("debian/kernels/linux-image-6.12_riscv64/boot/vmlinux-6.12", b"k" * 5000,
                  age_days=30, entry="debian/kernels/linux-image-6.12_riscv64")
    planted.write("debian/unpacked-2/0123abcd/data.tar", b"u" * 700, age_days=8,
                  entry="debian/unpacked-2/0123abcd")
    planted.write("debian/dists/mirror-1234/trixie/InRelease", b"r" * 100)
    planted.write("alpine/v3.20/releases/riscv64/alpine-minirootfs-3.20.3-riscv64.tar.gz",
                  b"a" * 400, age_days=9)
    planted.write("alpine/packages/abc-busybox-1.36.apk", b"b" * 40)
    planted.write("mirrorthing/blobs/one", b"m" * 60, age_days=20)
    planted.write("mirrorthing/state.db", b"s" * 6)
    planted.write("unknown-tool/stuff/file", b"z" * 10, age_days=15, entry="unknown-tool")
    held = planted.write("qemu/console/held.log", b"c" * 20, age_days=12)
    planted.holder = subprocess.Popen(["sh", "-c", 'exec sleep 300 < "$0"', str(held)])
    (root / "debian/debs/evil.deb").symlink_to(outside / "secret")
    (root / "debian/kernels/evil-kernel").symlink_to(outside / "dir")
    (root / "debian/unpacked-2/inside-link").symlink_to(root / "debian/debs")
    os.utime(root / "debian/unpacked-2/inside-link", (time.time() - 9 * DAY,) * 2,
             follow_symlinks=False)
    try:
        yield planted
    finally:
        for process in (planted.holder, planted.writer):
            process.kill()
            process.wait()


def listing(cache: Cache, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]],
            *args: str) -> dict[str, dict[str, object]]:
    result = rvforge_cli("cache", "list", "--format", "json", *args, env=cache.env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["cache_dir"] == str(cache.root)
    return {e["path"]: e for e in data["entries"]}


def test_list_names_each_entry_kind_owners_size_and_age(
        cache: Cache, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    entries = listing(cache, rvforge_cli)
    kinds = {path: e["kind"] for path, e in entries.items()}
    assert kinds["debian/debs/old_1.0_riscv64.deb"] == "downloads"
    assert kinds["debian/kernels/linux-image-6.12_riscv64"] == "kernels"
    assert kinds["debian/unpacked-2/0123abcd"] == "unpacked"
    assert kinds["debian/dists/mirror-1234/trixie"] == "indexes"
    assert kinds["alpine/v3.20/releases/riscv64/alpine-minirootfs-3.20.3-riscv64.tar.gz"] == \
        "downloads"
    assert kinds["mirrorthing/blobs/one"] == "downloads", "a third-party plugin's entries"
    assert kinds["mirrorthing/state.db"] == "indexes"
    assert kinds["unknown-tool"] == "other"
    assert kinds["elf-facts/facts.sqlite3"] == "elf-facts", "written by the real build's audit"
    assert [k for p, k in kinds.items() if p.startswith("qemu/isa/")] == ["qemu-probes"]
    assert entries["debian/kernels/linux-image-6.12_riscv64"]["bytes"] == 5000
    age = entries["debian/kernels/linux-image-6.12_riscv64"]["age_seconds"]
    assert isinstance(age, float | int) and 29 * DAY < age < 31 * DAY
    assert entries["debian/debs/new_1.0_riscv64.deb"]["owners"] == [
        "kernel debian", "provider debootstrap"]
    assert entries["mirrorthing/state.db"]["owners"] == ["provider mirrorthing"]
    assert entries["elf-facts/facts.sqlite3"]["owners"] == ["auditor isa", "auditor linkage"]
    assert entries[f"debian/debs/.big_1.0_riscv64.deb.{cache.writer.pid}.part"]["in_use"] == \
        f"being written by process {cache.writer.pid}"
    assert entries["qemu/console/held.log"]["in_use"] == f"in use by process {cache.holder.pid}"
    assert entries["debian/debs/.gone_1.0_riscv64.deb.999999999.part"]["in_use"] is None
    assert entries["debian/debs/evil.deb"]["symlink_outside"] == str(cache.outside / "secret")
    assert entries["debian/kernels/evil-kernel"]["bytes"] == 0, "a link is not followed"
    assert entries["debian/unpacked-2/inside-link"]["symlink_outside"] is None

    text = rvforge_cli("cache", "list", env=cache.env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"cache: {cache.root} (")
    assert lines[1].split() == ["AREA", "KIND", "ENTRIES", "SIZE", "NEWEST", "OLDEST", "OWNERS"]
    kernels = next(line for line in lines if line.startswith("debian/kernels/*"))
    cells = kernels.split()  # the newest is the planted link, the oldest 30 days old
    assert cells[1:5] == ["kernels", "2", "5.0", "kB"] and cells[6:8] == ["4w", "kernel"]
    assert any(line.split()[:2] == ["unknown-tool", "other"] for line in lines)
    long = rvforge_cli("cache", "list", "-l", "--kind", "downloads", env=cache.env)
    assert f"symlink out of the cache, to {cache.outside / 'secret'}" in long.stdout
    assert "mirrorthing/blobs/one" in long.stdout and "unknown-tool" not in long.stdout


def test_dry_run_removes_nothing(
        cache: Cache, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    before = sorted(p for p in cache.root.rglob("*"))
    result = rvforge_cli("cache", "clean", "--dry-run", env=cache.env)
    assert result.returncode == 0, result.stderr
    assert "would remove" in result.stdout.splitlines()[-1]
    assert sorted(p for p in cache.root.rglob("*")) == before


def test_clean_one_kind_older_than_a_week(
        cache: Cache, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = rvforge_cli("cache", "clean", "--kind", "downloads", "--kind", "unpacked",
                         "--older-than", "7d", "--format", "json", env=cache.env)
    assert result.returncode == 0, result.stderr
    removed = {e["path"] for e in json.loads(result.stdout)["removed"]}
    assert removed == {"debian/debs/old_1.0_riscv64.deb", "debian/unpacked-2/0123abcd",
                       "debian/unpacked-2/inside-link", "mirrorthing/blobs/one",
                       "alpine/v3.20/releases/riscv64/alpine-minirootfs-3.20.3-riscv64.tar.gz"}
    for path in removed:
        assert not os.path.lexists(cache.root / path)
    assert (cache.root / "debian/debs/new_1.0_riscv64.deb").exists()
    assert (cache.root / "debian/kernels/linux-image-6.12_riscv64").exists()
    assert (cache.root / "debian/debs").is_dir(), "the link's target, inside, stays"


def test_clean_everything_skips_what_is_in_use_and_never_leaves_the_cache(
        cache: Cache, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = rvforge_cli("cache", "clean", env=cache.env)
    assert result.returncode == 0, result.stderr
    left = sorted(str(p.relative_to(cache.root)) for p in cache.root.rglob("*")
                  if not p.is_dir() or p.is_symlink())
    part = f"debian/debs/.big_1.0_riscv64.deb.{cache.writer.pid}.part"
    assert left == sorted([part, "debian/debs/evil.deb", "debian/kernels/evil-kernel",
                           "qemu/console/held.log"])
    assert (cache.outside / "secret").read_text() == "not the cache's\n"
    assert (cache.outside / "dir" / "kept").read_text() == "also not\n"
    assert f"{part}: skipped: being written by process {cache.writer.pid}" in result.stderr
    assert "debian/debs/evil.deb: refused: a symlink out of the cache" in result.stderr
    assert f"qemu/console/held.log: skipped: in use by process {cache.holder.pid}" in \
        result.stderr
    assert result.stdout.splitlines()[-1].endswith("; skipped 4")


@pytest.mark.parametrize("args, message", [
    (["clean", "--older-than", "soon"], "--older-than 'soon': give a number and a unit"),
    (["clean", "--kind", "tarballs"], "--kind 'tarballs' is not a kind of cache entry; the "
                                      "kinds are boot-modules, console-logs, downloads"),
    (["list", "--format", "yaml"], "--format must be text or json, not 'yaml'"),
])
def test_bad_arguments_exit_2_with_one_line(
        args: list[str], message: str, tmp_path: Path,
        rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = rvforge_cli("cache", *args, env={"RVFORGE_CACHE_DIR": str(tmp_path / "c")})
    assert_one_line_error(result, 2, message)
