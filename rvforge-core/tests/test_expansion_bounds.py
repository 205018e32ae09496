"""Expansions that tree contents drive stay linear or bounded (issue 20): symlink chains that
double at each step, links that loop, ``ld.so.conf`` globs with many aliases of one file or
a pattern that backtracks, shared directories full of looping links. Each case is sized so
that exponential (or per-path) work would not finish: the assertions check the results,
and the timeout turns a runaway into a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rvforge import InputError, Tree
from rvforge.builtin.auditors.linkage import ld_so_conf
from rvforge.formats.cpio import write_cpio
from rvforge.imagefiles import InitramfsFiles
from rvforge.shared_files import SharedDirectory

pytestmark = pytest.mark.timeout(120)


def doubling_links(tree: Tree, levels: int) -> None:
    """``/l0 -> d`` and ``/lK -> l(K-1)/../l(K-1)``: resolving ``/lK`` takes 2^(K+1)-1
    hops, so ``/l60`` is 2^61 hops for a resolver without a cap."""
    tree.add_dir("/d")
    tree.add_file("/d/f", b"x")
    tree.add_symlink("/l0", "d")
    for level in range(1, levels + 1):
        tree.add_symlink(f"/l{level}", f"l{level - 1}/../l{level - 1}")


def test_a_doubling_symlink_chain_resolves_while_short_and_is_a_loop_when_long() -> None:
    tree = Tree()
    doubling_links(tree, 60)
    assert tree.resolve("/l4/f") == "/d/f"  # 31 hops: within Linux's 40
    with pytest.raises(InputError, match="too many levels of symbolic links"):
        tree.resolve("/l60/f")
    assert tree.lookup("/l4/f") is not None
    tree.check_links()  # every link once, each bounded: no escape, no runaway


def test_thousands_of_looping_links_are_checked_in_bounded_work() -> None:
    tree = Tree()
    tree.add_dir("/loops")
    for index in range(3000):  # a ring: each link points at the next
        tree.add_symlink(f"/loops/{index}", f"{(index + 1) % 3000}/x")
    tree.check_links()
    with pytest.raises(InputError, match="too many levels"):
        tree.resolve("/loops/0")


def test_an_images_own_lookups_give_up_on_a_doubling_chain(tmp_path: Path) -> None:
    tree = Tree()
    doubling_links(tree, 60)
    image = tmp_path / "links.cpio"
    with image.open("wb") as out:
        write_cpio(tree, out, epoch=0)
    files = InitramfsFiles(image)
    reached, node = files.resolve("/l4/f")
    assert reached == "/d/f" and node is not None and node.is_file
    assert files.resolve("/l60/f")[1] is None


def test_thousands_of_aliases_of_one_ld_so_conf_file_are_read_once() -> None:
    tree = Tree()
    tree.add_file("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n"
                                     b"include /etc/ld.so.conf.d/again/again/again/*.conf\n")
    tree.add_file("/etc/ld.so.conf.d/real.conf", b"/opt/once\n")
    tree.add_symlink("/etc/ld.so.conf.d/again", ".")  # a directory loop
    for index in range(3000):
        tree.add_symlink(f"/etc/ld.so.conf.d/alias{index}.conf", "real.conf")
    assert ld_so_conf(tree, "/etc/ld.so.conf") == ["/opt/once"]


def test_an_include_glob_that_would_backtrack_matches_in_linear_time() -> None:
    """``*a*a*a...b`` against long names of ``a``: a backtracking matcher tries every way
    to split the name among the stars (C(200, 40) ways)."""
    tree = Tree()
    pattern = "*a" * 40 + "b.conf"
    tree.add_file("/etc/ld.so.conf", f"include /etc/ld.so.conf.d/{pattern}\n".encode())
    for index in range(500):
        tree.add_file(f"/etc/ld.so.conf.d/{'a' * 200}{index}.conf", b"/opt/never\n")
    tree.add_file(f"/etc/ld.so.conf.d/{'a' * 40}b.conf", b"/opt/glob\n")
    assert ld_so_conf(tree, "/etc/ld.so.conf") == ["/opt/glob"]


def test_a_shares_walk_does_not_follow_looping_directory_links(tmp_path: Path) -> None:
    """Ten links to ``.`` in each directory: following them would be 10^depth paths (until
    the kernel's ELOOP)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "top").write_bytes(b"1")
    (tmp_path / "sub" / "inner").write_bytes(b"2")
    for index in range(10):
        os.symlink(".", tmp_path / f"self{index}")
        os.symlink("..", tmp_path / "sub" / f"up{index}")
    assert list(SharedDirectory(tmp_path, "/mnt").files()) == [
        tmp_path / "top", tmp_path / "sub" / "inner"]
