"""The check that an image's first program can start, before QEMU boots it: real images
(the Alpine minirootfs, programs built with riscv64-linux-gnu-gcc, the host's own x86-64
binaries), packed as cpio and ext4 by rvforge's own packers."""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvforge import INIT_SCRIPT, Artifact, BuildContext, Tree
from rvforge.errors import ExitCode, InputError, UnbootableImageError
from rvforge.formats.cpio import scan_cpio, write_cpio
from rvforge.formats.ext4 import write_ext4
from rvforge.imagefiles import Ext4Files, InitramfsFiles
from rvforge.initcheck import check_image, init_problem
from rvforge.loading import load_path

HOST_TRUE = Path(shutil.which("true") or "/bin/true").resolve()
HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2").resolve()
GLIBC_LOADER = "/lib/ld-linux-riscv64-lp64d.so.1"
HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def cpio(tree: Tree, path: Path) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as out:
        write_cpio(tree, out, epoch=0)  # type: ignore[arg-type]
    return path


def problem(tree: Tree, tmp_path: Path) -> str | None:
    found = init_problem(InitramfsFiles(cpio(tree, tmp_path / "image.cpio.gz")))
    return None if found is None else str(found)


@pytest.fixture
def alpine(alpine_tarball: Path, rvforge_context: BuildContext) -> Tree:
    """The Alpine minirootfs with rvforge's /init (a #!/bin/sh script; /bin/sh is a link
    to the musl-linked busybox)."""
    tree = load_path(alpine_tarball, rvforge_context)
    tree.add_file("/init", INIT_SCRIPT.encode(), mode=0o755)
    return tree


@pytest.fixture
def static_hello(riscv_cc: Callable[..., Path]) -> bytes:
    return riscv_cc(HELLO, "hello-static", "-static").read_bytes()


@pytest.fixture
def dynamic_hello(riscv_cc: Callable[..., Path]) -> bytes:
    return riscv_cc(HELLO, "hello-dynamic").read_bytes()


def test_the_alpine_image_with_rvforge_init_passes_in_well_under_a_second(
        alpine: Tree, tmp_path: Path) -> None:
    image = cpio(alpine, tmp_path / "alpine.cpio.gz")
    started = time.monotonic()
    check_image(Artifact.of_image(image))
    assert time.monotonic() - started < 0.5


def test_a_static_riscv64_init_passes(static_hello: bytes, tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/init", static_hello, mode=0o755)
    assert problem(tree, tmp_path) is None


def test_a_symlinked_init_is_followed_to_busybox_and_its_musl_loader(
        alpine: Tree, tmp_path: Path) -> None:
    alpine.remove("/init")
    alpine.add_symlink("/init", "bin/sh")  # relative; /bin/sh -> /bin/busybox
    assert problem(alpine, tmp_path) is None
    alpine.remove("/lib/ld-musl-riscv64.so.1")
    assert problem(alpine, tmp_path) == (
        "/init (-> /bin/busybox) needs the dynamic loader /lib/ld-musl-riscv64.so.1, which "
        "is not in the image; add the C library it was linked against (musl: "
        "ld-musl-riscv64.so.1, glibc: ld-linux-riscv64-lp64d.so.1), or link it statically "
        "(-static)")


def test_an_x86_64_init_is_named_as_such(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/init", HOST_TRUE.read_bytes(), mode=0o755)
    text = problem(tree, tmp_path)
    assert text is not None
    assert text.startswith("/init is an x86-64 ELF (EM_X86_64), not RISC-V: the riscv64 "
                           "kernel cannot run it (error -8); build it for riscv64")


def test_a_missing_init_names_the_kernel_panic_it_would_cause(alpine: Tree,
                                                              tmp_path: Path) -> None:
    alpine.remove("/init")
    assert problem(alpine, tmp_path) == (
        "there is no /init: the kernel would panic with 'VFS: Unable to mount root fs'; add "
        "an executable /init (rvforge build adds its own through the init overlay)")


def test_a_dangling_init_symlink_says_where_it_leads(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_symlink("/init", "/sbin/init")
    text = problem(tree, tmp_path)
    assert text is not None and "(it leads to /sbin, which is missing)" in text


def test_a_non_executable_init_gives_its_mode_and_the_chmod(alpine: Tree,
                                                            tmp_path: Path) -> None:
    alpine.chmod("/init", 0o644)
    assert problem(alpine, tmp_path) == (
        "/init is not executable (mode 0644): the kernel would fail to run it (error -13); "
        "make it executable (chmod 755 /init)")


def test_a_directory_at_init_is_not_a_program(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_dir("/init")
    assert problem(tree, tmp_path) == ("/init is a directory, not a program; put an "
                                       "executable file at /init")


def test_a_script_whose_interpreter_is_missing(alpine: Tree, tmp_path: Path) -> None:
    alpine.add_file("/init", b"#!/bin/bash\necho hi\n", mode=0o755)
    assert problem(alpine, tmp_path) == (
        "/init is a script for /bin/bash, which is not in the image; add /bin/bash "
        "(busybox provides /bin/sh) or change its #! line")


def test_a_script_whose_interpreter_is_x86_64(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/init", b"#! /bin/sh -e\ntrue\n", mode=0o755)
    tree.add_file("/bin/sh", HOST_TRUE.read_bytes(), mode=0o755)
    text = problem(tree, tmp_path)
    assert text is not None and text.startswith("/bin/sh is an x86-64 ELF (EM_X86_64)")


def test_a_dynamic_init_without_its_glibc_loader(dynamic_hello: bytes,
                                                 tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/init", dynamic_hello, mode=0o755)
    text = problem(tree, tmp_path)
    assert text is not None
    assert text.startswith(f"/init needs the dynamic loader {GLIBC_LOADER}, which is not in "
                           "the image")


def test_a_loader_found_through_a_merged_usr_link_must_be_executable_and_riscv(
        dynamic_hello: bytes, tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/init", dynamic_hello, mode=0o755)
    tree.add_dir("/usr/lib")
    tree.add_symlink("/lib", "usr/lib")
    tree.add_file("/usr/lib/ld-linux-riscv64-lp64d.so.1", HOST_LOADER.read_bytes(),
                  mode=0o644)
    assert problem(tree, tmp_path) == (
        f"/init needs the dynamic loader {GLIBC_LOADER}, which is not executable (mode "
        "0644); make /usr/lib/ld-linux-riscv64-lp64d.so.1 an executable file")
    tree.chmod("/usr/lib/ld-linux-riscv64-lp64d.so.1", 0o755)
    text = problem(tree, tmp_path)
    assert text is not None and f"{GLIBC_LOADER}, which is an x86-64 ELF" in text


def test_a_hardlinked_init_is_read_from_the_name_that_carries_the_data(
        static_hello: bytes, tmp_path: Path) -> None:
    tree = Tree()
    tree.add_file("/zz/hello", static_hello, mode=0o755)  # the data goes with the last name
    tree.add_hardlink("/init", "/zz/hello")
    assert problem(tree, tmp_path) is None
    tree.chmod("/zz/hello", 0o644)
    assert problem(tree, tmp_path) is not None


def test_a_symlink_loop_is_a_missing_init(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_symlink("/init", "/a")
    tree.add_symlink("/a", "/init")
    text = problem(tree, tmp_path)
    assert text is not None and text.startswith("there is no /init")


def test_the_check_stops_reading_once_it_has_what_it_needs(static_hello: bytes,
                                                           tmp_path: Path) -> None:
    """An archive whose end is garbage still passes when /init came before it: the lookup
    did not decompress further (a large Debian image is checked as fast as a small one)."""
    tree = Tree()
    tree.add_file("/init", static_hello, mode=0o755)
    image = tmp_path / "image.cpio"
    with open(image, "wb") as out:
        write_cpio(tree, out, epoch=0)
    data = image.read_bytes()
    image.write_bytes(data[:data.index(b"TRAILER!!!") - 110] + b"garbage" * 100)
    assert init_problem(InitramfsFiles(image)) is None
    with pytest.raises(InputError, match="no cpio newc header"):
        list(scan_cpio(image))


def test_an_ext4_disk_image_is_checked_at_its_bin_sh(alpine: Tree, tmp_path: Path,
                                                     rvforge_context: BuildContext) -> None:
    image = tmp_path / "alpine.ext4"
    write_ext4(alpine, image, epoch=0, scratch=rvforge_context.scratch("ext4"))
    started = time.monotonic()
    check_image(Artifact.of_image(image))
    assert time.monotonic() - started < 0.5
    assert Ext4Files(image).resolve("/bin/sh")[0] == "/bin/busybox"

    alpine.remove("/bin/sh")
    alpine.add_file("/bin/sh", HOST_TRUE.read_bytes(), mode=0o755)
    broken = tmp_path / "broken.ext4"
    write_ext4(alpine, broken, epoch=0, scratch=rvforge_context.scratch("ext4-2"))
    with pytest.raises(UnbootableImageError) as raised:
        check_image(Artifact.of_image(broken))
    assert raised.value.exit_code == ExitCode.USAGE
    assert str(raised.value) == (
        f"{broken}: /bin/sh is an x86-64 ELF (EM_X86_64), not RISC-V: the riscv64 kernel "
        "cannot run it (error -8); build it for riscv64 (riscv64-linux-gnu-gcc, or rvforge "
        "build with a riscv64 provider)")


def test_an_ext4_slow_symlink_is_read_whole(static_hello: bytes, tmp_path: Path,
                                            rvforge_context: BuildContext) -> None:
    """A symlink target over 60 bytes lives in a data block, not in the inode."""
    deep = "/" + "/".join(["directory-with-a-long-name"] * 4)
    tree = Tree()
    tree.add_file(deep + "/hello", static_hello, mode=0o755)
    tree.add_symlink("/init", deep + "/hello")
    image = tmp_path / "deep.ext4"
    write_ext4(tree, image, epoch=0, scratch=rvforge_context.scratch("ext4"))
    assert Ext4Files(image).resolve("/init")[0] == deep + "/hello"
    assert init_problem(Ext4Files(image)) is None


def test_an_unreadable_ext4_image_is_an_input_error(tmp_path: Path) -> None:
    image = tmp_path / "zeros.ext4"
    with open(image, "wb") as out:
        out.truncate(1 << 20)
    with pytest.raises(InputError, match="debugfs cannot read it"):
        Ext4Files(image).node("/init")


FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(head=st.binary(max_size=300), mode=st.sampled_from([0o755, 0o644]))
def test_any_init_bytes_give_an_answer_not_a_crash(tmp_path: Path, head: bytes,
                                                   mode: int) -> None:
    tree = Tree()
    tree.add_file("/init", b"\x7fELF\x02\x01\x01" + head, mode=mode)
    tree.add_file("/bin/sh", head, mode=mode)
    problem(tree, tmp_path)


@FUZZ
@given(data=st.binary(max_size=600))
def test_scanning_any_bytes_gives_members_or_an_input_error(tmp_path: Path,
                                                            data: bytes) -> None:
    image = tmp_path / "fuzz.cpio"
    image.write_bytes(b"070701" + data)
    try:
        for member in scan_cpio(image, head=lambda path, mode: 64):
            assert member.path.startswith("/") and len(member.head) <= 64
    except InputError:
        pass
