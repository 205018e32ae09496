"""The cpio newc writer and reader, against the real Alpine minirootfs and GNU cpio."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from rvforge import EntryKind, InputError, Tree, UnsafePathError
from rvforge.formats.cpio import read_cpio, write_cpio
from rvforge.formats.entries import with_device_nodes
from rvforge.formats.tar import read_tarball

EPOCH = 1_700_000_000
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0,
                                reason="GNU cpio -i makes device nodes and owners only as root")


@pytest.fixture(scope="module")
def alpine(alpine_tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return read_tarball(alpine_tarball, tmp_path_factory.mktemp("alpine"))


def cpio_bytes(tree: Tree, epoch: int = EPOCH) -> bytes:
    out = io.BytesIO()
    write_cpio(tree, out, epoch=epoch)
    return out.getvalue()


def digest(tree: Tree, path: str) -> str:
    return hashlib.sha256(tree.read_bytes(path)).hexdigest()


def link_groups(tree: Tree) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for entry in tree:
        if entry.kind in (EntryKind.FILE, EntryKind.HARDLINK):
            groups.setdefault(tree.data_entry(entry).path, set()).add(entry.path)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def assert_same_entries(expected: Tree, actual: Tree, epoch: int = EPOCH) -> None:
    """Every entry of ``expected`` is in ``actual`` with the same type, mode, owner, link
    target, device numbers, clamped mtime and content."""
    for entry in expected:
        got = actual.get(entry.path)
        assert got is not None, f"{entry.path} missing"
        kind = EntryKind.FILE if entry.kind is EntryKind.HARDLINK else entry.kind
        got_kind = EntryKind.FILE if got.kind is EntryKind.HARDLINK else got.kind
        assert (got_kind, got.mode, got.uid, got.gid) == (kind, entry.mode, entry.uid,
                                                          entry.gid), entry.path
        assert got.mtime == min(entry.mtime, epoch), entry.path
        assert (got.target if got.kind is EntryKind.SYMLINK else None) == (
            entry.target if entry.kind is EntryKind.SYMLINK else None), entry.path
        assert got.rdev == entry.rdev, entry.path
        if kind is EntryKind.FILE:
            assert digest(actual, got.path) == digest(expected, entry.path), entry.path
    assert link_groups(actual) == link_groups(expected)


def test_alpine_round_trips_entry_for_entry(alpine: Tree, tmp_path: Path) -> None:
    archive = tmp_path / "alpine.cpio"
    archive.write_bytes(cpio_bytes(alpine))
    back = read_cpio(archive, tmp_path / "store")
    assert_same_entries(alpine, back)
    assert len(back) == len(alpine) + 2  # /dev/console and /dev/null (Alpine has /dev)
    assert (back["/etc/shadow"].uid, back["/etc/shadow"].gid) == (0, 42)
    console = back["/dev/console"]
    assert (console.kind, console.rdev, console.mode) == (EntryKind.CHAR, (5, 1), 0o600)
    null = back["/dev/null"]
    assert (null.kind, null.rdev, null.mode) == (EntryKind.CHAR, (1, 3), 0o666)


def test_the_layout_is_what_the_kernel_unpacker_reads(alpine: Tree) -> None:
    data = cpio_bytes(alpine)
    names, offset = [], 0
    while True:
        head = data[offset:offset + 110]
        assert head[:6] == b"070701" and offset % 4 == 0
        fields = [int(head[i:i + 8], 16) for i in range(6, 110, 8)]
        namesize, size = fields[11], fields[6]
        name = data[offset + 110:offset + 110 + namesize - 1].decode()
        assert data[offset + 110 + namesize - 1] == 0
        names.append((name, fields[0]))
        offset += -(-(110 + namesize) // 4) * 4
        offset += -(-size // 4) * 4
        if name == "TRAILER!!!":
            break
    assert offset == len(data)
    assert names[0] == (".", 1)  # the root first: its mode reaches the rootfs
    assert [ino for _, ino in names[:-1]] == list(range(1, len(names)))
    assert all(not n.startswith(("/", "./")) for n, _ in names)
    paths = ["/" + n for n, _ in names[1:-1]]
    assert paths == [e.path for e in with_device_nodes(alpine).walk()][1:]


def test_gnu_cpio_lists_what_rvforge_wrote(alpine: Tree, tmp_path: Path) -> None:
    archive = tmp_path / "alpine.cpio"
    archive.write_bytes(cpio_bytes(alpine))
    listing = subprocess.run(["cpio", "--list", "-v", "--numeric-uid-gid", "--quiet"],
                             stdin=archive.open("rb"), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    tree = with_device_nodes(alpine)
    assert len(listing) == len(tree)
    pattern = re.compile(r"(\S{10})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+(?:,\s*\d+)?)\s+"
                         r"\w{3}\s+\d+\s+\d{4}\s+(.*)")
    for line in listing:
        match = pattern.fullmatch(line)
        assert match is not None, line
        mode, nlink, uid, gid, size, rest = match.groups()
        name, _, target = rest.partition(" -> ")
        entry = tree["/" if name == "." else "/" + name]
        assert mode[0] == {"file": "-", "hardlink": "-"}.get(entry.kind.value,
                                                            entry.kind.letter), name
        assert int(mode_bits(mode)) == entry.mode & 0o777, name
        assert (int(uid), int(gid)) == (entry.uid, entry.gid), name
        if entry.kind is EntryKind.SYMLINK:
            assert target == entry.target
        elif entry.kind is EntryKind.FILE:
            assert int(size) == entry.size, name
        elif entry.kind is EntryKind.CHAR:
            assert [int(x) for x in size.split(",")] == list(entry.rdev or ()), name
        elif entry.kind is EntryKind.DIR:
            subdirs = sum(1 for c in tree.children(entry.path) if c.kind is EntryKind.DIR)
            assert int(nlink) == 2 + subdirs, name


def mode_bits(mode: str) -> int:
    bits = 0
    for char in mode[1:]:
        bits = bits << 1 | (char not in "-ST")
    return bits


@NEEDS_ROOT
def test_gnu_cpio_extracts_owners_devices_and_hardlinks(alpine: Tree, tmp_path: Path
                                                         ) -> None:
    tree = alpine.copy()
    tree.add_file("/opt/data.bin", os.urandom(100_000), mode=0o640, uid=1234, gid=99)
    tree.add_hardlink("/opt/a-link", "/opt/data.bin")  # sorts before its target
    tree.add_hardlink("/opt/z-link", "/opt/data.bin")
    archive = tmp_path / "x.cpio"
    archive.write_bytes(cpio_bytes(tree))
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["cpio", "-i", "-d", "-m", "--quiet", "--no-absolute-filenames"],
                   stdin=archive.open("rb"), cwd=root, check=True)
    shadow = os.lstat(root / "etc/shadow")
    assert (shadow.st_uid, shadow.st_gid, stat.S_IMODE(shadow.st_mode)) == (0, 42, 0o640)
    console = os.lstat(root / "dev/console")
    assert stat.S_ISCHR(console.st_mode)
    assert (os.major(console.st_rdev), os.minor(console.st_rdev)) == (5, 1)
    inodes = {os.lstat(root / p).st_ino for p in ("opt/data.bin", "opt/a-link",
                                                   "opt/z-link")}
    assert len(inodes) == 1 and os.lstat(root / "opt/a-link").st_nlink == 3
    assert (root / "opt/a-link").read_bytes() == tree.read_bytes("/opt/data.bin")
    assert os.lstat(root / "opt/a-link").st_uid == 1234
    for entry in tree:
        if entry.kind is EntryKind.FILE:
            host = root / entry.path[1:]
            assert hashlib.sha256(host.read_bytes()).hexdigest() == digest(tree, entry.path)
        elif entry.kind is EntryKind.SYMLINK:
            assert os.readlink(root / entry.path[1:]) == entry.target


def test_hardlinks_share_one_inode_and_store_the_data_once(tmp_path: Path) -> None:
    tree = Tree()
    payload = b"x" * 5000 + b"tail"
    tree.add_file("/usr/bin/pigz", payload, mode=0o755)
    tree.add_hardlink("/usr/bin/gunzip", "/usr/bin/pigz")
    tree.add_hardlink("/usr/bin/unpigz", "/usr/bin/pigz")
    data = cpio_bytes(tree)
    assert data.count(payload) == 1
    archive = tmp_path / "links.cpio"
    archive.write_bytes(data)
    listing = subprocess.run(["cpio", "-tv", "--quiet"], stdin=archive.open("rb"),
                             capture_output=True, text=True, check=True).stdout
    rows = {line.split()[-1]: line.split() for line in listing.splitlines()}
    # GNU cpio's convention (and gen_init_cpio's): every name has nlink 3, the data
    # travels with the last one
    assert [rows[f"usr/bin/{n}"][1] for n in ("gunzip", "pigz", "unpigz")] == ["3"] * 3
    assert [rows[f"usr/bin/{n}"][4] for n in ("gunzip", "pigz", "unpigz")] == [
        "0", "0", str(len(payload))]
    back = read_cpio(archive, tmp_path / "store")
    assert link_groups(back) == {frozenset({"/usr/bin/gunzip", "/usr/bin/pigz",
                                            "/usr/bin/unpigz"})}
    assert back.read_bytes("/usr/bin/gunzip") == payload
    assert back.read_bytes("/usr/bin/pigz") == payload


def test_rebuilds_are_byte_identical_whatever_the_insertion_order(alpine: Tree) -> None:
    reordered = Tree()
    for entry in reversed(list(alpine)):  # children before parents, the root last
        reordered.add(type(entry)(**{f: getattr(entry, f) for f in entry.__slots__}))
    first = cpio_bytes(alpine)
    assert cpio_bytes(alpine) == first
    assert cpio_bytes(reordered) == first


def test_mtimes_are_clamped_to_source_date_epoch(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/old", b"a", mtime=100)
    tree.add_file("/new", b"b", mtime=2_000_000_000)
    tree.add_dir("/future", mtime=4_000_000_000)
    archive = tmp_path / "t.cpio"
    archive.write_bytes(cpio_bytes(tree, epoch=1000))
    back = read_cpio(archive, tmp_path / "store")
    assert [back[p].mtime for p in ("/old", "/new", "/future", "/dev/console")] == [
        100, 1000, 1000, 0]
    assert cpio_bytes(tree, epoch=1000) != cpio_bytes(tree, epoch=2000)


def test_an_existing_dev_console_is_kept(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_device("/dev/console", EntryKind.CHAR, 5, 1, mode=0o620, gid=5)
    archive = tmp_path / "t.cpio"
    archive.write_bytes(cpio_bytes(tree))
    back = read_cpio(archive, tmp_path / "store")
    assert (back["/dev/console"].mode, back["/dev/console"].gid) == (0o620, 5)
    assert back["/dev/null"].rdev == (1, 3)


def test_compressed_archives_read_back(alpine: Tree, tmp_path: Path) -> None:
    archive = tmp_path / "alpine.cpio.gz"
    archive.write_bytes(gzip.compress(cpio_bytes(alpine)))
    assert len(read_cpio(archive, tmp_path / "store")) == len(alpine) + 2


def test_concatenated_archives_overlay_like_the_kernel(tmp_path: Path) -> None:
    first, second = Tree(), Tree()
    first.add_file("/etc/motd", b"one")
    second.add_file("/etc/motd", b"two")
    second.add_file("/etc/issue", b"hi")
    archive = tmp_path / "both.cpio"
    archive.write_bytes(cpio_bytes(first) + b"\0" * 512 + cpio_bytes(second))
    back = read_cpio(archive, tmp_path / "store")
    assert back.read_bytes("/etc/motd") == b"two" and back.read_bytes("/etc/issue") == b"hi"


# -- bad input -----------------------------------------------------------------------------


def member(name: str, mode: int, data: bytes = b"", ino: int = 1, nlink: int = 1) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


TRAILER = member("TRAILER!!!", 0, ino=0)


@pytest.mark.parametrize("cut", [50, 200, 3000, -len(TRAILER)])
def test_truncated_archives_are_input_errors(alpine: Tree, tmp_path: Path, cut: int) -> None:
    archive = tmp_path / "cut.cpio"
    archive.write_bytes(cpio_bytes(alpine)[:cut])
    with pytest.raises(InputError, match="truncated"):
        read_cpio(archive, tmp_path / "store")


def test_a_truncated_gzip_is_an_input_error(alpine: Tree, tmp_path: Path) -> None:
    packed = gzip.compress(cpio_bytes(alpine))
    archive = tmp_path / "cut.cpio.gz"
    archive.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match="truncated|corrupt"):
        read_cpio(archive, tmp_path / "store")


@pytest.mark.parametrize("damage", ["magic", "hex", "namesize", "nul"])
def test_corrupt_headers_are_input_errors(tmp_path: Path, damage: str) -> None:
    data = bytearray(member("etc", 0o40755) + member("etc/motd", 0o100644, b"hi") + TRAILER)
    second = len(member("etc", 0o40755))
    if damage == "magic":
        data[second:second + 6] = b"070707"  # old portable format
    elif damage == "hex":
        data[second + 14] = ord("G")
    elif damage == "namesize":
        data[second + 94:second + 102] = b"00100000"
    else:
        data[second + 110 + 8] = ord("x")  # overwrite the name's NUL
    archive = tmp_path / "bad.cpio"
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"bad\.cpio"):
        read_cpio(archive, tmp_path / "store")


@pytest.mark.parametrize("name", ["../evil", "etc/../../evil"])
def test_members_climbing_out_are_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "evil.cpio"
    archive.write_bytes(member(name, 0o100644, b"pwned") + TRAILER)
    with pytest.raises(UnsafePathError, match="evil"):
        read_cpio(archive, tmp_path / "store")


def test_symlinks_escaping_the_root_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.cpio"
    archive.write_bytes(member("etc", 0o40755) + member("etc/x", 0o120777,
                                                        b"../../../etc/shadow") + TRAILER)
    with pytest.raises(UnsafePathError, match="escapes"):
        read_cpio(archive, tmp_path / "store")


def test_sockets_are_refused_by_name(tmp_path: Path) -> None:
    archive = tmp_path / "sock.cpio"
    archive.write_bytes(member("run/sock", 0o140755) + TRAILER)
    with pytest.raises(InputError, match="'run/sock' has an unsupported file type"):
        read_cpio(archive, tmp_path / "store")


def test_files_of_4gib_do_not_fit_newc(tmp_path: Path) -> None:
    from rvforge import HostFile

    sparse = tmp_path / "big.img"
    with open(sparse, "wb") as out:
        out.truncate(1 << 32)
    tree = Tree()
    tree.add_file("/big.img", HostFile.of(sparse))
    with pytest.raises(InputError, match="/big.img.*ext4 or tar"):
        cpio_bytes(tree)


def test_a_source_that_shrank_is_an_input_error(tmp_path: Path) -> None:
    from rvforge import HostFile

    host = tmp_path / "payload"
    host.write_bytes(b"x" * 10_000)
    tree = Tree()
    tree.add_file("/payload", HostFile.of(host))  # records the identity: any change shows
    tree.add_file("/unchecked", HostFile(host, 10_000))  # no identity: only the size can
    host.write_bytes(b"x" * 10)
    with pytest.raises(InputError, match="payload: changed during the build.*size 10000 -> 10"):
        cpio_bytes(tree)
    tree.remove("/payload")
    with pytest.raises(InputError, match="/unchecked.*shorter"):
        cpio_bytes(tree)
