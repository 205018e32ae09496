"""Trust edges beyond the corpus: symlink chains from every kind of source, signals that
must clean up like Ctrl-C, stale ``.part`` files of dead processes, a lone dynamic ELF
without its loader; and property tests of the tar and cpio readers, the writers' header
checks and the config loader (anything gives a result or rvforge's own error)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fixture_types import RiscvCC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from interrupted_build import packing_build
from typer.testing import CliRunner

from rvforge import RvforgeError, Tree, UnsafePathError
from rvforge.cli import app
from rvforge.config import load_config
from rvforge.formats.cpio import read_cpio, write_cpio
from rvforge.formats.directory import read_directory
from rvforge.formats.tar import read_tarball
from rvforge.formats.tarwriter import write_tar
from rvforge.net.download import sweep_stale_parts

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


# -- symlink chains ------------------------------------------------------------------------

CHAIN = [("a/a", "."), ("a/up", ".."), ("a/x", "a/a/up/../etc/passwd")]
"""Each link stays inside on its own; together ``a/x`` reaches the host's /etc/passwd."""


@pytest.mark.parametrize("order", [CHAIN, CHAIN[::-1]])
def test_a_symlink_chain_escaping_the_root_is_refused_from_a_directory(
        tmp_path: Path, order: list[tuple[str, str]]) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    for name, target in order:
        (root / name).symlink_to(target)
    with pytest.raises(UnsafePathError, match="escapes the root filesystem through"):
        read_directory(root)


def test_a_symlink_chain_escaping_the_root_is_refused_from_a_cpio(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_dir("/a")
    tree.add_symlink("/a/x", "up/../etc/passwd")  # alone, it stays inside
    second = Tree()  # a second, concatenated archive adds the link that makes it escape
    second.add_dir("/a")
    second.add_symlink("/a/up", "..")
    archive = tmp_path / "chain.cpio"
    with open(archive, "wb") as out:
        write_cpio(tree, out, epoch=0)
        write_cpio(second, out, epoch=0)
    with pytest.raises(UnsafePathError, match="'/a/x'|/a/x: symlink target"):
        read_cpio(archive, tmp_path / "scratch")


def test_links_that_stay_inside_through_other_links_are_kept(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_dir("/usr/lib")
    tree.add_symlink("/lib", "usr/lib")
    tree.add_symlink("/usr/lib/up", "..")
    tree.add_symlink("/x", "lib/up/lib/../bin/sh")  # /usr/bin/sh: inside
    tree.add_symlink("/loop", "loop/x")
    tree.check_links()
    assert tree.resolve("/x") == "/usr/bin/sh"


# -- signals -------------------------------------------------------------------------------


def default_sigint() -> None:
    """In the child: SIGINT's default action, which Python turns into KeyboardInterrupt. A
    test run started in the background of a non-interactive shell (`make test &`) inherits
    SIGINT ignored, and Python then leaves it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                          (signal.SIGINT, 130)])
def test_a_signal_mid_build_cleans_up_like_ctrl_c(tmp_path: Path, signum: int,
                                                  code: int) -> None:
    """SIGTERM during packing: no .part output, no scratch directory left in TMPDIR."""
    build = packing_build(tmp_path, preexec_fn=default_sigint)
    process, tmp, out = build.process, build.tmp, build.out
    assert list(tmp.iterdir()), "no scratch directory while packing"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines() == ["rvforge: interrupted"]
    assert list(out.iterdir()) == []
    assert list(tmp.iterdir()) == []


def test_stale_part_files_of_dead_processes_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".file.tar.gz.{dead.pid}.part"
    mine = tmp_path / f".file.tar.gz.{os.getpid()}.part"
    living = tmp_path / ".file.tar.gz.1.part"  # init: alive
    other = tmp_path / "file.tar.gz"
    for path in (stale, mine, living, other):
        path.write_bytes(b"x")
    assert sweep_stale_parts(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, living, other))


# -- linkage -------------------------------------------------------------------------------


def test_a_tree_with_one_dynamic_elf_and_no_loader_fails_the_linkage_audit(
        tmp_path: Path, riscv_cc: RiscvCC) -> None:
    program = riscv_cc.program("hello", "hello-dyn")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_bytes(program.read_bytes())
    result = invoke("--quiet", "audit", str(root), "--isa", "rv64gc")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "interp-missing" in result.stdout or "needs the loader" in result.stdout
    alone = invoke("--quiet", "audit", str(program), "--isa", "rv64gc")
    assert alone.returncode == 0, alone.stdout + alone.stderr  # a lone file: no root


# -- property tests ------------------------------------------------------------------------


def _tar_bytes(members: list[tuple[str, int, int, float, int, int, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, kind, uid, mtime, major, minor, mode in members:
            info = tarfile.TarInfo(name)
            info.type = (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                         tarfile.CHRTYPE)[kind]
            info.uid, info.mtime, info.mode = uid, mtime, mode
            info.devmajor, info.devminor = major, minor
            info.linkname = "../" * (uid % 4) + "x" if kind == 2 else ""
            archive.addfile(info, io.BytesIO(b"") if kind == 0 else None)
    return buffer.getvalue()


_NAMES = st.text(st.sampled_from("ab./\n\\é"), min_size=1, max_size=12)
_MEMBERS = st.lists(st.tuples(
    _NAMES, st.integers(0, 3), st.integers(-(1 << 40), 1 << 40),
    st.integers(-(1 << 34), 1 << 34), st.integers(0, 1 << 41), st.integers(0, 1 << 21),
    st.integers(0, 0o7777)), min_size=1, max_size=6)


@FUZZ
@given(members=_MEMBERS)
def test_header_values_give_an_artifact_or_a_one_line_refusal(tmp_path: Path,
                                                              members: list) -> None:
    source = tmp_path / "src.tar"
    try:
        source.write_bytes(_tar_bytes(members))
    except (ValueError, OverflowError, tarfile.TarError):
        return  # tarfile itself cannot write these values: no input to read
    try:
        tree = read_tarball(source, tmp_path / "scratch")
    except RvforgeError:
        return
    for write in (write_cpio, write_tar):
        try:
            write(tree, io.BytesIO(), epoch=1 << 31)
        except RvforgeError as error:
            assert "\n" not in str(error).strip()


@FUZZ
@given(data=st.binary(max_size=4096), cut=st.integers(0, 10240))
def test_the_tar_reader_gives_a_tree_or_an_input_error(tmp_path: Path, data: bytes,
                                                       cut: int) -> None:
    base = _tar_bytes([("a/b", 0, 0, 0, 0, 0, 0o644), ("a/l", 2, 1, 0, 0, 0, 0o777)])
    blob = (base[:cut] + data + base[cut:])[: 12 << 10]
    source = tmp_path / "fuzz.tar"
    source.write_bytes(blob)
    try:
        read_tarball(source, tmp_path / "scratch")
    except RvforgeError:
        pass


def _cpio_bytes() -> bytes:
    tree = Tree()
    tree.add_file("/etc/f", b"hello", uid=7)
    tree.add_symlink("/etc/l", "f")
    buffer = io.BytesIO()
    write_cpio(tree, buffer, epoch=0)
    return buffer.getvalue()


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=12),
       cut=st.integers(0, 4096), tail=st.binary(max_size=256))
def test_the_cpio_reader_gives_a_tree_or_an_input_error(tmp_path: Path, flips: list,
                                                        cut: int, tail: bytes) -> None:
    blob = bytearray(_cpio_bytes())
    for offset, value in flips:
        if offset < len(blob):
            blob[offset] = value
    source = tmp_path / "fuzz.cpio"
    source.write_bytes(bytes(blob[:cut]) + tail)
    try:
        read_cpio(source, tmp_path / "scratch")
    except RvforgeError:
        pass


_TOML_VALUES = st.recursive(
    st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(), st.booleans(),
              st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3), max_leaves=8)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').encode(
            "unicode_escape").decode().replace("\\\\\\\\", "\\\\") + '"'
    return str(value)


_KEYS = st.sampled_from(["build.provider", "build.output", "build.auditors", "build.init",
                         "build.deep", "build.audit", "machines.m.memory", "machines.m.cpus",
                         "machines.m.isa", "provider.release", "build.bogus"])


@FUZZ
@given(settings_=st.dictionaries(_KEYS, _TOML_VALUES, max_size=4),
       junk=st.binary(max_size=64))
def test_the_config_loader_gives_a_config_or_a_usage_error(
        tmp_path: Path, settings_: dict[str, object], junk: bytes) -> None:
    tables: dict[str, list[str]] = {}
    for key, value in settings_.items():
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append(f"{name} = {_toml(value)}")
    text = "".join(f"[{t}]\n" + "\n".join(lines) + "\n" for t, lines in tables.items())
    path = tmp_path / "rvforge.toml"
    for blob in (text.encode(), text.encode() + junk, junk):
        path.write_bytes(blob)
        try:
            config = load_config(path)
        except RvforgeError as error:
            assert str(path) in str(error)
            continue
        assert all(isinstance(v, str) for v in config.build.get("auditors", []))
        assert all(m.memory_mb >= 1 and m.cpus >= 1 for m in config.machines)
        assert isinstance(config.build.get("init", True), bool)


# -- full disks ----------------------------------------------------------------------------


def _limited(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes, writes fail with EFBIG (as on
    a full disk) instead of SIGXFSZ killing the process."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("source, blamed", [
    ("tarball", "cannot write a scratch copy (File too large); the scratch space is full"),
    ("directory", "image.cpio: cannot write (File too large); free space on its disk"),
])
def test_a_full_disk_names_the_path_not_the_input(tmp_path: Path, alpine_tarball: Path,
                                                  source: str, blamed: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big").write_bytes(b"x" * (1 << 20))
    exe = Path(sys.executable).with_name("rvforge")
    given_source = alpine_tarball if source == "tarball" else root
    result = subprocess.run(
        [str(exe), "--quiet", "build", "--provider", "local", "--source", str(given_source),
         "-o", str(tmp_path / "out" / "image.cpio"), "--no-audit", "--isa", "rv64gc"],
        capture_output=True, text=True, preexec_fn=lambda: _limited(256 << 10),
        env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert blamed in result.stderr and "corrupt" not in result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
