"""The isa, linkage and size auditors on real trees: the Alpine minirootfs, a glibc root
made of the cross toolchain's riscv64 glibc, and programs compiled for the tests."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from pathlib import Path

import pytest
from fixture_types import RiscvCC

from rvforge import pipeline
from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.findings import Severity
from rvforge.formats.directory import read_directory
from rvforge.formats.tar import read_tarball
from rvforge.machines import Machine
from rvforge.pipeline import AuditReport
from rvforge.registry import Registry, build_registry
from rvforge.riscv import facts_cache as elf_cache
from rvforge.riscv.elf_files import elf_files
from rvforge.tree import Content, HostFile, InlineBytes, Tree

GLIBC_SYSROOT = Path("/usr/riscv64-linux-gnu/lib")
RV64GC = Machine("test-gc", "", "rv64gc", memory_mb=1024)
VECTOR_MACHINE = Machine("test-vector", "", "rv64gcv", summary="a profile with V")

# Vector code in a file whose attribute does not say V (as OpenSSL's assembly does)
HIDDEN_VECTOR = r"""
#include <stdio.h>
#include <sys/auxv.h>
void vcopy(int *d, const int *s, unsigned long n) {
    __asm__ volatile(".option push\n.option arch, +v\n"
        "1: vsetvli t0, %2, e32, m1, ta, ma\n vle32.v v1, (%1)\n vse32.v v1, (%0)\n"
        " vadd.vv v2, v1, v1\n vmul.vv v3, v2, v1\n vse32.v v3, (%0)\n vle32.v v4, (%1)\n"
        " vor.vv v5, v4, v3\n vse32.v v5, (%0)\n sub %2, %2, t0\n bnez %2, 1b\n"
        ".option pop" : "+r"(d), "+r"(s), "+r"(n) : : "t0", "memory");
}
int main(void) { int a[4] = {0}, b[4] = {1}; DISPATCH vcopy(a, b, 4); return a[0]; }
"""
DISPATCH_LIB = r"""
#include <sys/auxv.h>
#include <stddef.h>
static int add_v(int a) { size_t vl;
    __asm__ volatile("vsetvli %0, %1, e32, m1, ta, ma" : "=r"(vl) : "r"(a)); return (int)vl; }
static int add_scalar(int a) { return a + 1; }
int add(int a) { return (getauxval(AT_HWCAP) & (1 << ('V' - 'A'))) ? add_v(a) : add_scalar(a); }
"""
LP64_LIB_SOURCE = "int dummy(void) { return 1; }\n"
LP64_USER = ("int dummy(void);\nvoid _start(void) { dummy(); "
             '__asm__ volatile("li a7, 93\\n li a0, 0\\n ecall"); for (;;); }\n')


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = build_registry(load_entrypoints=False)
    reg.add_machine(RV64GC)
    reg.add_machine(VECTOR_MACHINE)
    return reg


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty cache per test: the ELF facts cache's tests count what it holds."""
    return tmp_path / "cache"


@pytest.fixture
def alpine(alpine_tarball: Path, tmp_path: Path) -> Tree:
    return read_tarball(alpine_tarball, tmp_path / "alpine")


def content_of(tree: Tree, path: str) -> Content:
    """The content of file ``path`` of ``tree`` (a file always has one)."""
    content = tree[path].content
    assert content is not None, path
    return content


def glibc_root() -> Tree:
    """A minimal glibc root: the cross toolchain's riscv64 loader and libc (merged /usr)."""
    tree = Tree()
    for name in ("ld-linux-riscv64-lp64d.so.1", "libc.so.6", "libm.so.6"):
        tree.add_file(f"/usr/lib/riscv64-linux-gnu/{name}", HostFile.of(GLIBC_SYSROOT / name),
                      mode=0o755)
    tree.add_symlink("/lib", "usr/lib")
    tree.add_symlink("/usr/lib/ld-linux-riscv64-lp64d.so.1",
                     "riscv64-linux-gnu/ld-linux-riscv64-lp64d.so.1")
    return tree


def run(registry: Registry, tree: Tree, ctx: BuildContext, machine: Machine = RV64GC,
        *auditors: str) -> AuditReport:
    return pipeline.audit(registry, tree, machine, ctx, list(auditors) or None)


def codes(report: AuditReport, severity: Severity | None = None) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in report.findings:
        if severity is None or f.severity is severity:
            found.setdefault(f.path or "", set()).add(f.code)
    return found


def test_alpine_is_clean_on_rv64gc(registry: Registry, ctx: BuildContext, alpine: Tree) -> None:
    report = run(registry, alpine, ctx)
    assert [f for f in report.findings if f.severity is not Severity.INFO] == []
    busybox = report.files["/bin/busybox"]
    assert busybox["machine"] == "riscv64" and busybox["abi"] == "lp64d"
    assert busybox["arch_attribute"].startswith("rv64i2p1_m2p0_a2p1_f2p2_d2p2_c2p0")
    assert busybox["missing"] == []
    assert len(report.files) >= 15


def test_vector_binary_is_an_error_naming_a_machine_that_has_v(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    tree = glibc_root()
    tree.add_file("/usr/bin/vsum", HostFile.of(riscv_cc.program("vsum", "vmain", "-O2",
                                                        "-march=rv64gcv")), mode=0o755)
    report = run(registry, tree, ctx)
    [finding] = report.errors
    assert finding.code == "isa-required" and finding.path == "/usr/bin/vsum"
    assert "requires v" in finding.message and "test-vector" in finding.message
    assert "test-gc" not in finding.details["machines"]
    assert report.files["/usr/bin/vsum"]["missing"][0] == "v"
    assert run(registry, tree, ctx, VECTOR_MACHINE).errors == []


def test_vlen_requirement_is_checked(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    tree = glibc_root()
    tree.add_file("/usr/bin/v256", HostFile.of(riscv_cc.program("vsum", "v256", "-O2",
                                                        "-march=rv64gcv_zvl256b")))
    report = run(registry, tree, ctx, VECTOR_MACHINE)
    assert [f.code for f in report.errors] == ["isa-required"]
    assert report.files["/usr/bin/v256"]["missing"] == ["zvl256b"]
    wide = Machine("wide", "", "rv64gcv_zvl512b")
    assert run(registry, tree, ctx, wide).errors == []


def test_zba_zbb_binary_against_profiles(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    tree = glibc_root()
    tree.add_file("/usr/bin/zb", HostFile.of(riscv_cc.program("hello", "hello-zb", "-O2",
                                                      "-march=rv64gc_zba_zbb")))
    lacking = run(registry, tree, ctx).files["/usr/bin/zb"]["missing"]
    assert lacking == ["zba", "zbb"]
    for profile in ("rva22u64", "rva23u64"):
        assert run(registry, tree, ctx, Machine(profile, "", profile)).errors == []


def test_glibc_binary_on_alpine_is_a_libc_mismatch(
        registry: Registry, ctx: BuildContext, alpine: Tree, riscv_cc: RiscvCC) -> None:
    alpine.add_file("/usr/bin/hello", HostFile.of(riscv_cc.program("hello", "hello")), mode=0o755)
    report = run(registry, alpine, ctx)
    [finding] = report.errors
    assert finding.code == "libc-mismatch" and finding.path == "/usr/bin/hello"
    assert "needs glibc (libc.so.6, GLIBC_2" in finding.message
    assert "this root's libc is musl" in finding.message


def test_musl_binary_on_glibc_root_is_a_libc_mismatch(
        registry: Registry, ctx: BuildContext, alpine: Tree) -> None:
    tree = glibc_root()
    apk = alpine.lookup("/sbin/apk")
    assert apk is not None and apk.content is not None
    tree.add_file("/usr/bin/apk", apk.content)
    assert codes(run(registry, tree, ctx, RV64GC, "linkage"), Severity.ERROR) == {
        "/usr/bin/apk": {"libc-mismatch"}}


def test_host_binary_is_not_riscv(registry: Registry, ctx: BuildContext, alpine: Tree) -> None:
    alpine.add_file("/usr/lib/libtrue.so", HostFile.of(Path("/bin/true")))
    alpine.add_file("/lib/firmware/dsp.elf", HostFile.of(Path("/bin/true")))
    report = run(registry, alpine, ctx)
    assert codes(report, Severity.ERROR) == {"/usr/lib/libtrue.so": {"not-riscv"}}
    assert "x86-64" in report.errors[0].message
    assert codes(report, Severity.INFO)["/lib/firmware/dsp.elf"] == {"not-riscv"}


@pytest.mark.parametrize("cut", [4, 20, 64, 700, -100])
def test_truncated_elf_is_a_finding_not_an_exception(
        registry: Registry, ctx: BuildContext, alpine: Tree, cut: int) -> None:
    data = alpine.read_bytes("/lib/ld-musl-riscv64.so.1")
    alpine.add_file("/usr/bin/broken", data[:cut])
    report = run(registry, alpine, ctx)
    assert codes(report, Severity.ERROR) == {"/usr/bin/broken": {"elf-unreadable"}}
    assert report.files["/usr/bin/broken"]["machine"] is None


def test_lp64_object_on_lp64d_root_is_an_abi_mismatch(
        registry: Registry, ctx: BuildContext, alpine: Tree, riscv_cc: RiscvCC) -> None:
    flags = ("-O2", "-nostdlib", "-march=rv64imac", "-mabi=lp64")
    lib = riscv_cc(LP64_LIB_SOURCE, "libdummy.so", *flags, "-shared", "-fPIC")
    user = riscv_cc(LP64_USER, "lp64-user", *flags, f"-L{lib.parent}", "-Wl,--no-as-needed",
                    "-l:libdummy.so", "-Wl,-rpath,/opt/lp64",
                    "-Wl,-dynamic-linker,/lib/ld-musl-riscv64.so.1")
    alpine.add_file("/opt/lp64/libdummy.so", HostFile.of(lib))
    alpine.add_file("/opt/lp64/user", HostFile.of(user), mode=0o755)
    report = run(registry, alpine, ctx)
    # the library has no DT_NEEDED, yet the loader refuses it as well
    assert {(f.code, f.path) for f in report.errors} == {
        ("abi-mismatch", "/opt/lp64/user"), ("abi-mismatch", "/opt/lp64/libdummy.so")}
    for finding in report.errors:
        assert "lp64 ABI" in finding.message and "lp64d" in finding.message
    # a static lp64 program (and a static PIE) does not care about the root's libc
    alpine.add_file("/opt/lp64/static", HostFile.of(riscv_cc(
        "void _start(void){for(;;);}\n", "lp64-static", *flags, "-static")))
    alpine.add_file("/opt/lp64/static-pie", HostFile.of(riscv_cc(
        "void _start(void){for(;;);}\n", "lp64-static-pie", *flags, "-static-pie",
        "-fPIE", "-Wl,--no-dynamic-linker")))
    assert len(run(registry, alpine, ctx).errors) == 2


def test_runtime_dispatching_library_is_a_warning(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    lib = riscv_cc(DISPATCH_LIB, "libdisp.so", "-O2", "-march=rv64gcv", "-shared", "-fPIC",
                   "-Wl,-soname,libdisp.so.1")
    tree = glibc_root()
    tree.add_file("/usr/lib/riscv64-linux-gnu/libdisp.so.1", HostFile.of(lib))
    report = run(registry, tree, ctx)
    assert report.errors == []
    [warning] = report.warnings
    assert warning.code == "isa-required" and "getauxval" in warning.message


def test_deep_finds_vector_code_the_attribute_hides(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    tree = glibc_root()
    plain = riscv_cc(HIDDEN_VECTOR.replace("DISPATCH", ""), "hidden-v", "-O2")
    asks = riscv_cc(HIDDEN_VECTOR.replace("DISPATCH", "if (getauxval(AT_HWCAP) & (1 << 21))"),
                    "hidden-v-dispatch", "-O2")
    tree.add_file("/usr/bin/plain", HostFile.of(plain))
    tree.add_file("/usr/bin/asks", HostFile.of(asks))
    assert run(registry, tree, ctx).findings == []  # the attributes say rv64gc
    ctx.deep = True
    report = run(registry, tree, ctx)
    assert codes(report, Severity.ERROR) == {"/usr/bin/plain": {"isa-instructions"}}
    assert codes(report, Severity.WARNING) == {"/usr/bin/asks": {"isa-instructions"}}
    assert report.files["/usr/bin/plain"]["instructions"] == {"v": 9}
    assert "test-vector" in report.errors[0].message


def test_needed_libraries_resolve_like_the_loader(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC, alpine: Tree) -> None:
    lib = riscv_cc("int f(void){return 1;}\n", "libf.so", "-shared", "-fPIC",
                   "-Wl,-soname,libf.so.1")
    user_source = "int f(void);\nint main(void){return f();}\n"
    runpath = riscv_cc(user_source, "uses-f-origin", f"-L{lib.parent}", "-Wl,--no-as-needed",
                       "-l:libf.so", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")
    tree = glibc_root()
    tree.add_file("/opt/app/bin/app", HostFile.of(runpath))  # DT_NEEDED libf.so.1
    tree.add_file("/srv/conf/bin/app", HostFile.of(runpath))
    tree.add_file("/opt/app/lib/libf.so.1", HostFile.of(lib))
    tree.add_file("/opt/other/libf.so.1", HostFile.of(lib))
    report = run(registry, tree, ctx, RV64GC, "linkage")
    assert codes(report) == {"/srv/conf/bin/app": {"needed-missing"}}
    assert "libf.so" in report.errors[0].message and "/srv/conf/lib" in report.errors[0].message
    # /etc/ld.so.conf with an include finds it
    tree.add_file("/etc/ld.so.conf", b"# comment\ninclude ld.so.conf.d/*.conf\n")
    tree.add_file("/etc/ld.so.conf.d/other.conf", b"/opt/other\n")
    assert run(registry, tree, ctx, RV64GC, "linkage").findings == []
    # musl: the path file replaces the default directories
    alpine.add_file("/usr/local/bin/app", HostFile.of(riscv_cc(
        user_source, "uses-f-musl", f"-L{lib.parent}", "-Wl,--no-as-needed", "-l:libf.so",
        "-nostdlib", "-Wl,-e,main", "-Wl,-dynamic-linker,/lib/ld-musl-riscv64.so.1")))
    alpine.add_file("/opt/m/libf.so.1", HostFile.of(lib))
    assert codes(run(registry, alpine, ctx, RV64GC, "linkage")) == {
        "/usr/local/bin/app": {"needed-missing"}}
    alpine.add_file("/etc/ld-musl-riscv64.path", b"/opt/m\n/lib:/usr/lib\n")
    assert run(registry, alpine, ctx, RV64GC, "linkage").findings == []


def test_interpreter_and_symbol_versions(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    data = riscv_cc.program("hello", "hello").read_bytes()
    tree = glibc_root()
    tree.add_file("/usr/bin/new", data.replace(b"GLIBC_2.34", b"GLIBC_2.99"))
    tree.add_file("/usr/bin/hello", data)
    report = run(registry, tree, ctx, RV64GC, "linkage")
    [finding] = report.findings
    assert (finding.code, finding.path) == ("symbol-version-missing", "/usr/bin/new")
    assert "GLIBC_2.99" in finding.message and "libc.so.6" in finding.message
    tree.remove("/usr/lib/riscv64-linux-gnu/ld-linux-riscv64-lp64d.so.1")
    assert "interp-missing" in codes(run(registry, tree, ctx, RV64GC, "linkage"))[
        "/usr/bin/hello"]


@pytest.mark.parametrize(("mib", "severity"), [(8, None), (400, Severity.WARNING),
                                               (935, Severity.ERROR)])
def test_size_against_memory(registry: Registry, ctx: BuildContext, mib: int,
                             severity: Severity | None) -> None:
    tree = Tree()
    tree.add_file("/payload", HostFile(Path("/dev/null"), mib * 1024 * 1024))
    report = run(registry, tree, ctx, RV64GC, "size")  # 1024 MiB of RAM
    assert [f.severity for f in report.findings] == ([severity] if severity else [])
    if severity:
        assert report.findings[0].code == "size-exceeds-memory"
        assert "1024 MiB" in report.findings[0].message
    ctx.artifact_kind = "disk"
    assert run(registry, tree, ctx, RV64GC, "size").findings == []


def facts_db(ctx: BuildContext) -> sqlite3.Connection:
    return sqlite3.connect(ctx.cache("elf-facts") / "facts.sqlite3")


def plant(ctx: BuildContext, table: str, path: str, key: str | None = None) -> str:
    """Give ``path`` a made-up attribute (``..._zvl65536b1p0``) in the cache's tree row
    (``table == "trees"``, the only one) or in the file row ``key``; return it."""
    with facts_db(ctx) as db:
        if table == "trees":
            ((key, value),) = db.execute("SELECT key, value FROM trees").fetchall()
            decoded = elf_cache.decode_tree(value)
            assert decoded is not None
            members = decoded
        else:
            (value,) = db.execute("SELECT value FROM facts WHERE key = ?", (key,)).fetchone()
            facts = elf_cache.decode(value)
            assert facts is not None
            members = {path: facts}
        info = members[path].info
        assert info is not None and info.arch is not None
        planted = dataclasses.replace(info, arch=info.arch + "_zvl65536b1p0")
        members[path] = elf_cache.Facts(planted)
        value = (elf_cache.encode_tree(members) if table == "trees"
                 else elf_cache.encode(members[path]))
        db.execute(f"UPDATE {table} SET value = ? WHERE key = ?", (value, key))
    db.close()
    assert planted.arch is not None
    return planted.arch


def rewrite_same_bytes(path: Path) -> None:
    """Write ``path`` again with its own bytes, size and mtime: only its ctime changes."""
    stat = os.stat(path)
    time.sleep(0.02)  # past the granularity of file timestamps
    path.write_bytes(path.read_bytes())
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_warm_cache_answers_from_the_tree_row_then_the_file_rows(
        registry: Registry, ctx: BuildContext, alpine: Tree,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elf_cache, "RACY_SECONDS", 0.0)  # the files were just unpacked
    first = run(registry, alpine, ctx, RV64GC, "isa")
    busybox = alpine["/bin/busybox"].content
    assert isinstance(busybox, HostFile)
    # an unchanged tree: its row answers
    planted = plant(ctx, "trees", "/bin/busybox")
    second = run(registry, alpine.copy(), ctx, RV64GC, "isa")
    assert second.files["/bin/busybox"]["arch_attribute"] == planted  # from the tree row
    # another file changed (its ctime): the tree row no longer answers, the file rows do
    key = elf_cache.content_key(busybox)
    planted = plant(ctx, "facts", "/bin/busybox", key)
    motd = alpine["/etc/motd"].content
    assert isinstance(motd, HostFile)
    old_motd_key = elf_cache.content_key(motd)
    rewrite_same_bytes(Path(motd.path))
    assert elf_cache.content_key(motd) != old_motd_key
    third = run(registry, alpine.copy(), ctx, RV64GC, "isa")
    assert third.files["/bin/busybox"]["arch_attribute"] == planted  # from the file row
    with facts_db(ctx) as db:
        assert db.execute("SELECT count(*) FROM trees").fetchone() == (2,)  # the new tree's
    db.close()
    # busybox written again with the same bytes, size and mtime: a new ctime, so a new key
    rewrite_same_bytes(Path(busybox.path))
    assert elf_cache.content_key(busybox) != key
    fourth = run(registry, alpine.copy(), ctx, RV64GC, "isa")
    assert fourth.files["/bin/busybox"] == first.files["/bin/busybox"]
    assert fourth.findings == first.findings


def test_a_tree_row_never_answers_for_a_file_rewritten_in_place(
        registry: Registry, ctx: BuildContext, tmp_path: Path, riscv_cc: RiscvCC,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory read again after one file got other bytes of the same size and mtime
    (only the ctime tells): the tree row of the first read must not answer."""
    monkeypatch.setattr(elf_cache, "RACY_SECONDS", 0.0)
    plain = riscv_cc.program("hello", "hello").read_bytes()
    vector = riscv_cc.program("vsum", "vmain", "-O2", "-march=rv64gcv").read_bytes()
    size = max(len(plain), len(vector))  # padded alike: an ELF file may end in zeros
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    for name in ("a", "b"):
        (root / "usr" / "bin" / name).write_bytes(plain.ljust(size, b"\0"))
    first = run(registry, read_directory(root), ctx, RV64GC, "isa")
    assert first.files["/usr/bin/a"]["missing"] == []
    target = root / "usr" / "bin" / "a"
    stat = os.stat(target)
    time.sleep(0.02)  # past the granularity of file timestamps
    with open(target, "r+b") as out:  # the same inode, size and (restored) mtime
        out.write(vector.ljust(size, b"\0"))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = run(registry, read_directory(root), ctx, RV64GC, "isa")
    assert "v" in second.files["/usr/bin/a"]["missing"]
    assert second.files["/usr/bin/b"]["missing"] == []


def test_a_file_rewritten_after_read_directory_is_an_error_not_stale_facts(
        registry: Registry, ctx: BuildContext, tmp_path: Path, riscv_cc: RiscvCC) -> None:
    """Cold (the file is read for its facts) the audit refuses a file that is no longer
    the one the tree recorded; the packer does too (tests/test_packers.py)."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_bytes(riscv_cc.program("hello", "hello").read_bytes())
    tree = read_directory(root)
    time.sleep(0.02)  # past the granularity of file timestamps
    with open(root / "bin" / "hello", "ab") as out:
        out.write(b"\0" * 16)
    with pytest.raises(InputError, match="bin/hello: changed during the build"):
        run(registry, tree, ctx, RV64GC, "isa")


def test_files_changed_moments_ago_are_not_cached_inline_bytes_are(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC, tmp_path: Path) -> None:
    # a copy written now (the compiler's output may be older: it is cached per session)
    fresh = tmp_path / "hello-fresh"
    fresh.write_bytes(riscv_cc.program("hello", "hello-fresh", "-O2").read_bytes())
    tree = glibc_root()
    tree.add_file("/usr/bin/fresh", HostFile.of(fresh), mode=0o755)
    tree.add_file("/usr/bin/inline", InlineBytes(fresh.read_bytes()), mode=0o755)
    tree.add_file("/etc/motd", InlineBytes(b"hello\n"))
    run(registry, tree, ctx, RV64GC, "isa")
    with facts_db(ctx) as db:
        keys = {k for (k,) in db.execute("SELECT key FROM facts")}
    db.close()
    assert elf_cache.content_key(content_of(tree, "/usr/bin/fresh")) not in keys
    assert elf_cache.content_key(content_of(tree, "/usr/bin/inline")) in keys
    assert elf_cache.content_key(content_of(tree, "/etc/motd")) in keys  # "not an ELF file"
    glibc = elf_cache.content_key(content_of(tree, "/usr/lib/riscv64-linux-gnu/libc.so.6"))
    assert glibc in keys  # installed long ago: settled


def test_another_format_version_or_a_corrupt_database_is_not_used(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC) -> None:
    tree = Tree()
    tree.add_file("/usr/bin/v", InlineBytes(riscv_cc.program("vsum", "vmain", "-O2",
                                                     "-march=rv64gcv").read_bytes()))
    key = elf_cache.content_key(content_of(tree, "/usr/bin/v"))
    run(registry, tree, ctx, RV64GC, "isa")
    with facts_db(ctx) as db:
        db.execute("UPDATE facts SET value = ?", (elf_cache.encode(elf_cache.NOT_ELF),))
        db.execute(f"PRAGMA user_version = {elf_cache.FORMAT_VERSION + 1}")
    db.close()
    report = run(registry, tree.copy(), ctx, RV64GC, "isa")
    assert "v" in report.files["/usr/bin/v"]["missing"]  # read again, not "not an ELF"
    with facts_db(ctx) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (elf_cache.FORMAT_VERSION,)
        assert [k for (k,) in db.execute("SELECT key FROM facts")] == [key]
    db.close()
    (ctx.cache("elf-facts") / "facts.sqlite3").write_bytes(b"not a database" * 100)
    report = run(registry, tree.copy(), ctx, RV64GC, "isa")
    assert "v" in report.files["/usr/bin/v"]["missing"]


def test_symbol_tables_are_read_only_for_files_that_lack_extensions(
        registry: Registry, ctx: BuildContext, alpine: Tree, riscv_cc: RiscvCC) -> None:
    run(registry, alpine, ctx, RV64GC, "isa")
    files = elf_files(alpine, ctx)
    assert files and not any(f.symbols_read for f in files.values())
    alpine.add_file("/usr/bin/vsum", HostFile.of(riscv_cc.program("vsum", "vmain", "-O2",
                                                          "-march=rv64gcv")), mode=0o755)
    run(registry, alpine, ctx, RV64GC, "isa")
    files = elf_files(alpine, ctx)
    assert {p for p, f in files.items() if f.symbols_read} == {"/usr/bin/vsum"}


def test_windows_on_one_host_file_are_audited_and_cached_each_on_its_own(
        registry: Registry, ctx: BuildContext, riscv_cc: RiscvCC, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two programs stored back to back in one file (as rvforge-debootstrap keeps a
    package's data.tar whole): each window is read from its own offset and cached apart."""
    monkeypatch.setattr(elf_cache, "RACY_SECONDS", 0.0)
    vsum = riscv_cc.program("vsum", "vsum-window", "-O2", "-march=rv64gcv").read_bytes()
    hello = riscv_cc.program("hello", "hello-window", "-O2").read_bytes()
    blob = tmp_path / "archive.bin"
    blob.write_bytes(b"\0" * 512 + vsum + b"\0" * 100 + hello)
    identity = HostFile.of(blob).identity
    tree = glibc_root()
    tree.add_file("/usr/bin/vsum", HostFile(blob, len(vsum), identity, 512), mode=0o755)
    tree.add_file("/usr/bin/hello", HostFile(blob, len(hello), identity,
                                             512 + len(vsum) + 100), mode=0o755)
    assert tree.read_bytes("/usr/bin/hello") == hello
    for _ in range(2):  # cold, then from the cache
        report = run(registry, tree.copy(), ctx, RV64GC, "isa")
        assert [(f.code, f.path) for f in report.errors] == [("isa-required", "/usr/bin/vsum")]
        assert report.files["/usr/bin/hello"]["missing"] == []
    keys = {elf_cache.content_key(content_of(tree, p)) for p in ("/usr/bin/vsum", "/usr/bin/hello")}
    assert len(keys) == 2
    with facts_db(ctx) as db:
        assert db.execute("SELECT count(*) FROM facts WHERE key IN (?, ?)",
                          tuple(keys)).fetchone() == (2,)
    db.close()
