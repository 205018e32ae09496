"""The Tree model: normalisation, refusal of escapes, chroot-style symlink resolution."""

from __future__ import annotations

import pytest

from rvforge import Entry, EntryKind, InputError, Tree, UnsafePathError
from rvforge.tree import check_symlink_target, normalize


@pytest.mark.parametrize("raw, expected", [
    ("./usr//bin/", "/usr/bin"), ("usr/bin", "/usr/bin"), ("/", "/"), (".", "/"),
    ("/a/./b", "/a/b"),
])
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", ["../etc/passwd", "usr/../../x", "/a/.."])
def test_normalize_refuses_dotdot_naming_the_member(raw: str) -> None:
    with pytest.raises(UnsafePathError, match="member.tar: x"):
        normalize(raw, member="member.tar: x")


def test_parents_are_created_with_sane_modes() -> None:
    tree = Tree()
    tree.add_file("/usr/local/bin/tool", b"#!/bin/sh\n", mode=0o755)
    for parent in ("/usr", "/usr/local", "/usr/local/bin"):
        entry = tree[parent]
        assert (entry.kind, entry.mode, entry.uid, entry.gid) == (EntryKind.DIR, 0o755, 0, 0)
    assert [e.path for e in tree.walk()] == ["/", "/usr", "/usr/local", "/usr/local/bin",
                                             "/usr/local/bin/tool"]


def test_modes_keep_setuid_setgid_sticky() -> None:
    tree = Tree()
    tree.add_dir("/tmp", mode=0o1777)
    tree.add_file("/bin/su", b"x", mode=0o4755)
    tree.add_file("/bin/wall", b"x", mode=0o2755, gid=5)
    assert tree["/tmp"].st_mode == 0o41777
    assert tree["/bin/su"].mode == 0o4755
    assert (tree["/bin/wall"].mode, tree["/bin/wall"].gid) == (0o2755, 5)


def test_symlinks_resolve_inside_the_tree_like_a_chroot() -> None:
    tree = Tree()
    tree.add_file("/usr/bin/busybox", b"elf", mode=0o755)
    tree.add_symlink("/bin", "usr/bin")
    tree.add_symlink("/usr/bin/sh", "/bin/busybox")  # absolute: from the tree's root
    tree.add_symlink("/lib/up", "../usr")
    assert tree.resolve("/bin/sh") == "/usr/bin/busybox"
    sh = tree.lookup("/bin/sh")
    assert sh is not None and sh.path == "/usr/bin/busybox"
    assert tree.read_bytes("/bin/sh") == b"elf"
    assert tree.resolve("/bin/sh", follow_final=False) == "/usr/bin/sh"
    assert tree.resolve("/lib/up/bin/busybox") == "/usr/bin/busybox"
    assert tree.resolve("/bin/../../../bin/sh") == "/usr/bin/busybox"  # '..' stops at /


def test_lexically_escaping_symlink_is_refused() -> None:
    tree = Tree()
    with pytest.raises(UnsafePathError, match="escapes the root"):
        tree.add_symlink("/etc/evil", "../../host/etc/shadow")
    check_symlink_target("/etc/ok", "../usr/lib")  # stays inside: fine


def test_symlink_loop_is_reported_not_followed_forever() -> None:
    tree = Tree()
    tree.add_symlink("/a", "b")
    tree.add_symlink("/b", "a")
    with pytest.raises(InputError, match="too many levels"):
        tree.resolve("/a")
    assert tree.lookup("/a") is None


def test_entries_under_a_symlinked_parent_land_where_it_points() -> None:
    tree = Tree()
    tree.add_dir("/usr/bin")
    tree.add_symlink("/bin", "usr/bin")
    entry = tree.add_file("/bin/bash", b"x", mode=0o755)
    assert entry.path == "/usr/bin/bash"
    assert "/bin/bash" not in tree and "/usr/bin/bash" in tree


def test_add_member_is_add_without_parsing_the_path_again() -> None:
    tree = Tree()
    usr = tree.add_dir("/usr")
    bin_dir = tree.add_member(usr, "bin", Entry("ignored", EntryKind.DIR, 0o755))
    assert bin_dir.path == "/usr/bin" and tree.children("/usr") == [bin_dir]
    tree.add_member(bin_dir, "busybox", Entry("", EntryKind.FILE, 0o755))
    assert tree.read_bytes("/usr/bin/busybox") == b""
    link = tree.add_member(tree["/"], "bin", Entry("", EntryKind.SYMLINK, 0o777,
                                                   target="usr/bin"))
    # a member of a symlink goes the long way: where the link points, as add() does
    sh = tree.add_member(link, "sh", Entry("", EntryKind.SYMLINK, 0o777, target="busybox"))
    assert sh.path == "/usr/bin/sh"
    with pytest.raises(UnsafePathError, match="escapes the root"):
        tree.add_member(bin_dir, "evil", Entry("", EntryKind.SYMLINK, 0o777,
                                               target="../../../etc/shadow"))
    with pytest.raises(UnsafePathError, match="member.tar: x"):
        tree.add_member(usr, "../../y", Entry("", EntryKind.FILE, 0o644),
                        member="member.tar: x")
    for name in ("", ".", "..", "a/b", "a\0b"):
        with pytest.raises(UnsafePathError, match="not a file name"):
            tree.add_member(usr, name, Entry("", EntryKind.FILE, 0o644))
    tree.add_member(tree["/"], "usr", Entry("", EntryKind.DIR, 0o700))  # dir over dir
    assert tree["/usr"].mode == 0o700 and "/usr/bin/busybox" in tree


def test_file_as_parent_is_an_error() -> None:
    tree = Tree()
    tree.add_file("/etc", b"not a dir")
    with pytest.raises(InputError, match="not a directory"):
        tree.add_file("/etc/passwd", b"")


def test_replacing_dir_with_dir_keeps_children_and_takes_metadata() -> None:
    tree = Tree()
    tree.add_file("/etc/hostname", b"x")
    tree.add_dir("/etc", mode=0o700, uid=3)
    assert "/etc/hostname" in tree
    assert (tree["/etc"].mode, tree["/etc"].uid) == (0o700, 3)


def test_replacing_dir_with_file_drops_the_subtree() -> None:
    tree = Tree()
    tree.add_file("/opt/a/b", b"x")
    tree.add_file("/opt", b"now a file")
    assert [e.path for e in tree.walk()] == ["/", "/opt"]


def test_hardlinks_share_data_and_survive_removal_of_the_original() -> None:
    tree = Tree()
    tree.add_file("/bin/a", b"data", mode=0o755, uid=7)
    link = tree.add_hardlink("/bin/b", "/bin/a")
    assert (link.kind, link.target, link.uid) == (EntryKind.HARDLINK, "/bin/a", 7)
    assert tree.read_bytes("/bin/b") == b"data"
    assert tree.file_size(link) == 4
    tree.remove("/bin/a")
    heir = tree["/bin/b"]
    assert heir.kind is EntryKind.FILE and tree.read_bytes("/bin/b") == b"data"


def test_hardlink_to_missing_member_is_refused() -> None:
    tree = Tree()
    with pytest.raises(InputError, match="not in the tree"):
        tree.add_hardlink("/x", "/nope")


def test_devices_and_fifos_need_no_root() -> None:
    tree = Tree()
    tree.add_device("/dev/console", EntryKind.CHAR, 5, 1, mode=0o600)
    tree.add_device("/dev/vda", EntryKind.BLOCK, 254, 0)
    tree.add_fifo("/run/initctl")
    assert tree["/dev/console"].rdev == (5, 1)
    assert tree["/dev/vda"].kind is EntryKind.BLOCK
    assert tree.stats().counts == {"dir": 3, "char": 1, "block": 1, "fifo": 1}


def test_children_and_stats() -> None:
    tree = Tree()
    tree.add_file("/etc/b", b"12")
    tree.add_file("/etc/a", b"3")
    tree.add_symlink("/e", "etc")
    assert [e.name for e in tree.children("/e")] == ["a", "b"]
    stats = tree.stats()
    assert stats.file_bytes == 3 and stats.entries == 5


def test_copy_is_independent() -> None:
    tree = Tree()
    tree.add_file("/a", b"x")
    other = tree.copy()
    other.chmod("/a", 0o600)
    other.add_file("/b", b"y")
    assert tree["/a"].mode == 0o644 and "/b" not in tree
