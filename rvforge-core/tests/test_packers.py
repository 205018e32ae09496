"""The built-in cpio and tar packers, through the registry, the pipeline and the real
``rvforge`` command (including a build run as an unprivileged user)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_types import RunRvforge

from rvforge import BuildContext, EntryKind, InputError, Tree
from rvforge.formats.directory import read_directory
from rvforge.formats.tar import read_tarball
from rvforge.loading import load_path
from rvforge.pipeline import Step, pack

EPOCH = 1_700_000_000
FORMATS = ["cpio", "cpio.gz", "cpio.zst", "cpio.xz", "tar", "tar.gz", "tar.zst", "tar.xz"]


@pytest.fixture(scope="module")
def alpine(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return read_tarball(alpine_tarball, tmp_path_factory.mktemp("alpine"))


@pytest.fixture(autouse=True)
def epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ctx`` (made after autouse fixtures) clamps mtimes to :data:`EPOCH`."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def digest(tree: Tree, path: str) -> str:
    return hashlib.sha256(tree.read_bytes(path)).hexdigest()


def assert_packed_faithfully(expected: Tree, actual: Tree, epoch: int) -> None:
    """Every entry of ``expected`` is in ``actual`` with the same type, mode, owner, link
    target, clamped mtime and content; hardlinks stay hardlinks; /dev/console is there."""
    groups: dict[str, set[str]] = {}
    for entry in expected:
        got = actual.get(entry.path)
        assert got is not None, f"{entry.path} missing"
        plain = {EntryKind.HARDLINK: EntryKind.FILE}
        assert plain.get(got.kind, got.kind) == plain.get(entry.kind, entry.kind), entry.path
        assert (got.mode, got.uid, got.gid) == (entry.mode, entry.uid, entry.gid), entry.path
        assert got.mtime == min(entry.mtime, epoch), entry.path
        assert got.rdev == entry.rdev, entry.path
        if entry.kind is EntryKind.SYMLINK:
            assert got.target == entry.target, entry.path
        if entry.kind in (EntryKind.FILE, EntryKind.HARDLINK):
            assert digest(actual, got.path) == digest(expected, entry.path), entry.path
            data = actual.data_entry(got).path
            groups.setdefault(expected.data_entry(entry).path, set()).add(data)
    assert all(len(targets) == 1 for targets in groups.values()), "hardlinks were split"
    console = actual["/dev/console"]
    assert (console.kind, console.rdev, console.uid) == (EntryKind.CHAR, (5, 1), 0)


def rich_tree(alpine: Tree) -> Tree:
    """Alpine plus what a real rootfs also has: hardlinks, setuid, devices, long names."""
    tree = alpine.copy()
    tree.add_hardlink("/bin/a-busybox-link", "/bin/busybox")
    tree.add_hardlink("/usr/bin/zz-busybox-link", "/bin/busybox")
    tree.add_file("/usr/bin/sudo", b"#!/bin/sh\n", mode=0o4755)
    tree.add_dir("/tmp", mode=0o1777)
    tree.add_device("/dev/vda", EntryKind.BLOCK, 254, 0, mode=0o660, gid=6)
    tree.add_fifo("/run/initctl", mode=0o600)
    deep = "/usr/share/" + "/".join(["a-rather-long-directory-name"] * 5) + "/file.txt"
    tree.add_file(deep, b"long", uid=100_000, gid=100_000)
    tree.add_symlink("/usr/lib/long-link", deep)
    tree.add_file("/opt/late", b"new", mtime=2_000_000_000)
    return tree


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_packs_the_tree_faithfully(alpine: Tree, ctx: BuildContext,
                                                tmp_path: Path, fmt: str) -> None:
    tree = rich_tree(alpine)
    registry = ctx.registry
    packer, chosen = registry.packer_for(f"image.{fmt}")
    assert chosen == fmt and packer.name == fmt.split(".")[0]
    artifact = pack(registry, tree, Step(packer.name, None), fmt, tmp_path / f"x.{fmt}", ctx)
    assert artifact.kind == ("initramfs" if fmt.startswith("cpio") else "tar")
    assert [p.name for p in tmp_path.iterdir()] == [f"x.{fmt}"]  # no temporary left
    back = load_path(artifact.path, ctx)
    assert_packed_faithfully(tree, back, EPOCH)
    if not fmt.endswith(".xz"):  # slow; xz output is checked for determinism on its own
        again = pack(registry, tree, Step(packer.name, None), fmt, tmp_path / f"y.{fmt}", ctx)
        assert again.sha256 == artifact.sha256


@pytest.mark.parametrize("fmt", ["cpio.gz", "tar", "ext4"])
def test_a_file_changed_after_the_tree_was_read_is_not_packed(ctx: BuildContext,
                                                              tmp_path: Path, fmt: str) -> None:
    """Other bytes of the same size and mtime (only the ctime tells): the audit judged the
    old ones, so the packer stops, names the file and leaves no artifact."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    motd = root / "etc" / "motd"
    motd.write_bytes(b"before\n")
    tree = read_directory(root)
    stat_before = os.stat(motd)
    time.sleep(0.02)  # past the granularity of file timestamps
    motd.write_bytes(b"after!\n")
    os.utime(motd, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    out = tmp_path / "out"
    packer = fmt.split(".")[0]
    with pytest.raises(InputError, match=r"etc/motd: changed during the build.*ctime_ns"):
        pack(ctx.registry, tree, Step(packer, None), fmt, out / f"x.{fmt}", ctx)
    assert list(out.iterdir()) == []
    unchanged = read_directory(root)  # read again: packed as it is now
    artifact = pack(ctx.registry, unchanged, Step(packer, None), fmt, out / f"x.{fmt}", ctx)
    if fmt != "ext4":
        assert load_path(artifact.path, ctx).read_bytes("/etc/motd") == b"after!\n"


def test_gnu_tar_reads_owners_devices_links_and_long_names(alpine: Tree, ctx: BuildContext,
                                                           tmp_path: Path) -> None:
    tree = rich_tree(alpine)
    out = tmp_path / "rootfs.tar"
    pack(ctx.registry, tree, Step("tar", None), "tar", out, ctx)
    listing = subprocess.run(["tar", "-tvf", str(out), "--numeric-owner"],
                             capture_output=True, text=True, check=True).stdout
    lines = {line.split(" ./", 1)[1].split(" -> ")[0].split(" link to ")[0].rstrip("/"):
             line for line in listing.splitlines() if " ./" in line}
    assert lines["etc/shadow"].startswith("-rw-r----- 0/42 ")
    assert lines["dev/console"].startswith("crw------- 0/0 ") and " 5,1 " in lines[
        "dev/console"]
    assert lines["dev/vda"].startswith("brw-rw---- 0/6 ")
    assert lines["usr/bin/sudo"].startswith("-rwsr-xr-x")
    assert lines["tmp"].startswith("drwxrwxrwt")
    assert lines["run/initctl"].startswith("prw-------")
    assert lines["bin/busybox"].startswith("h") and "link to ./bin/a-busybox-link" in lines[
        "bin/busybox"]
    deep = next(name for name in lines if name.endswith("file.txt"))
    assert len(deep) > 100 and "100000/100000" in lines[deep]
    assert "  " not in lines["etc/shadow"].split(" 0/42")[0]  # no user/group names


# -- the real command ----------------------------------------------------------------------


def build(rvforge_cli: RunRvforge, source: Path, output: Path, **kwargs: Any
          ) -> subprocess.CompletedProcess[str]:
    return rvforge_cli("build", "--provider", "local", "--source", str(source), "--no-audit",
                       "-o", str(output), **kwargs)


@pytest.mark.parametrize("suffix", [".cpio.gz", ".cpio.zst", ".tar"])
def test_cli_builds_and_inspects_alpine(rvforge_cli: RunRvforge, alpine_tarball: Path, alpine: Tree,
                                        tmp_path: Path, suffix: str) -> None:
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    first = tmp_path / f"alpine{suffix}"
    result = build(rvforge_cli, alpine_tarball, first, env=env)
    assert result.returncode == 0, result.stderr
    assert first.name in result.stdout and "sha256" in result.stdout
    second = tmp_path / f"again{suffix}"
    assert build(rvforge_cli, alpine_tarball, second, env=env).returncode == 0
    assert first.read_bytes() == second.read_bytes()

    listing = rvforge_cli("inspect", str(first), check=True).stdout.splitlines()
    assert any(line.startswith("crw------- 0/0") and line.endswith(" /dev/console")
               for line in listing)
    assert any(line.startswith("-rw-r----- 0/42") and line.endswith(" /etc/shadow")
               for line in listing)
    entries = {e["path"]: e for e in json.loads(
        rvforge_cli("inspect", "--format", "json", str(first), check=True).stdout)}
    for entry in alpine:
        got = entries[entry.path]
        assert got["type"] == entry.kind.value, entry.path
        assert (got["mode"], got["uid"], got["gid"]) == (f"{entry.mode:04o}", entry.uid,
                                                         entry.gid), entry.path
        assert got.get("target") == entry.target, entry.path
        assert got["size"] == alpine.file_size(entry), entry.path
    assert {p for p in entries if p not in alpine} >= {"/dev/console", "/dev/null"}
    # rvforge's /init is written for initramfs builds that lack one
    assert ("/init" in entries) == suffix.startswith(".cpio")


@pytest.fixture
def unprivileged_dirs() -> Iterator[tuple[Path, Path]]:
    """A world-readable input directory and a world-writable output directory outside
    pytest's private temporary tree."""
    base = Path(tempfile.mkdtemp(prefix="rvforge-nobody-"))
    try:
        base.chmod(0o755)
        inputs, outputs = base / "in", base / "out"
        inputs.mkdir(mode=0o755)
        outputs.mkdir()
        outputs.chmod(0o777)
        yield inputs, outputs
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 needs root")
def test_an_unprivileged_build_still_has_root_owned_entries(
        alpine_tarball: Path, unprivileged_dirs: tuple[Path, Path],
        nobody_can_run_rvforge: Path) -> None:
    inputs, outputs = unprivileged_dirs
    source = inputs / alpine_tarball.name
    shutil.copyfile(alpine_tarball, source)
    source.chmod(0o644)
    output = outputs / "alpine.cpio.gz"
    rvforge = nobody_can_run_rvforge
    command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
               "--", str(rvforge), "build", "--provider", "local", "--source",
               str(source), "--no-audit", "-o", str(output)]
    env = {**os.environ, "HOME": str(outputs), "XDG_CACHE_HOME": str(outputs / "cache"),
           "TMPDIR": str(outputs)}
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert output.stat().st_uid == 65534  # really written by nobody
    listing = subprocess.run(["cpio", "-tv", "--numeric-uid-gid", "--quiet"],
                             input=subprocess.run(["gzip", "-dc", str(output)],
                                                  capture_output=True, check=True).stdout,
                             capture_output=True, check=True).stdout.decode().splitlines()
    rows = {line.split()[-1]: line.split() for line in listing if " -> " not in line}
    assert rows["etc/shadow"][2:4] == ["0", "42"]
    assert rows["bin/busybox"][2:4] == ["0", "0"]
    assert rows["dev/console"][0].startswith("c") and rows["dev/console"][2:4] == ["0", "0"]
    assert stat.S_IMODE(output.stat().st_mode) & 0o044  # readable, as any build output
