"""Packages as audit inputs, through the real CLI: wheels, zips, .deb and .apk files the
tests build around real riscv64 objects (V, Zbb and plain rv64gc code), read in memory;
the wheel baseline; several inputs in one report; and bad packages (exit 2, one line)."""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from fixture_types import RiscvCC, RunRvforge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.context import BuildContext
from rvforge.errors import InputError
from rvforge.formats.packages import Package, read_package
from rvforge.loading import load_input
from rvforge.registry import build_registry
from rvforge.testing import assert_one_line_error
from rvforge.tree import EntryKind, InlineBytes

ZBB_SOURCE = """
unsigned long count(unsigned long x) { return __builtin_ctzl(x) + __builtin_popcountl(x); }
unsigned long rot(unsigned long x, int n) { return (x >> n) | (x << (64 - n)); }
"""
PLAIN_SOURCE = "int add(int a, int b) { return a + b; }\n"


@pytest.fixture(scope="module")
def objects(riscv_cc: RiscvCC) -> dict[str, bytes]:
    """Real shared objects: plain rv64gc, Zbb code, unconditional V code (vsum)."""
    shared = ("-O2", "-shared", "-fPIC")
    return {
        "plain": riscv_cc(PLAIN_SOURCE, "libplain.so", *shared).read_bytes(),
        "zbb": riscv_cc(ZBB_SOURCE, "libzbb.so", *shared, "-march=rv64gc_zbb").read_bytes(),
        "v": riscv_cc.program("vsum", "libvsum.so", *shared, "-march=rv64gcv").read_bytes(),
    }


def _load_builders() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "package_builders", Path(__file__).with_name("package_builders.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builders = _load_builders()
make_wheel, make_apk, make_deb = builders.make_wheel, builders.make_apk, builders.make_deb


@pytest.fixture
def rvforge_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI run in-process, as the ``rvforge`` script runs it (a subprocess per call
    would cost a second each on a loaded machine)."""
    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(app, list(args))
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout,
                                           result.stderr)

    return invoke


def audit_json(rvforge_cli: RunRvforge, *args: str) -> tuple[int, dict]:
    result = rvforge_cli("--quiet", "audit", "--format", "json", *args)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def test_a_clean_wheel_meets_its_tag_baseline(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, {"demo/_plain.so": objects["plain"], "demo/__init__.py": b""})
    result = rvforge_cli("--quiet", "audit", str(wheel))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "manylinux_2_31_riscv64: baseline rva20u64" in result.stdout
    assert "lowest profile that runs all of it: rva20u64" in result.stdout
    code, data = audit_json(rvforge_cli, str(wheel))
    [entry] = data["files"]
    assert entry["path"] == "/demo/_plain.so" and entry["profile"] == "rva20u64"
    assert data["inputs"][0]["target"] == {"machine": "manylinux_2_31_riscv64",
                                           "isa": "rva20u64"}


def test_a_wheel_beyond_its_baseline_names_member_extension_and_profile(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, {"demo/_v.so": objects["v"], "demo/_zbb.so": objects["zbb"],
                                  "demo/_plain.so": objects["plain"]})
    result = rvforge_cli("--quiet", "audit", str(wheel))
    assert result.returncode == 3, result.stdout + result.stderr
    out = result.stdout
    assert "error[isa-required] /demo/_v.so requires v, which manylinux_2_31_riscv64" in out
    # the extension first, then the machines that have it, the profile last (issue 19)
    v_line = next(line for line in out.splitlines() if "/demo/_v.so requires v" in line)
    assert "of the RVA profiles, rva23u64 is the first with it" in v_line
    assert v_line.index("requires v") < v_line.index("rva23u64")
    assert "error[isa-required] /demo/_zbb.so requires zbb" in out and "rva22u64" in out
    assert "lowest profile that runs all of it: rva23u64" in out
    code, data = audit_json(rvforge_cli, str(wheel))
    profiles = {f["path"]: f["profile"] for f in data["files"]}
    assert profiles == {"/demo/_v.so": "rva23u64", "/demo/_zbb.so": "rva22u64",
                        "/demo/_plain.so": "rva20u64"}
    # an explicit target replaces the baseline
    assert rvforge_cli("--quiet", "audit", "--isa", "rva23u64", str(wheel)).returncode == 0


def test_deep_finds_what_the_attribute_does_not_say(rvforge_cli: RunRvforge, riscv_cc: RiscvCC,
                                                    tmp_path: Path) -> None:
    # Zbb instructions under a plain rv64gc attribute (ror a0,a0,a1 and cpop a0,a0 as raw
    # words, as hand-written assembly that enabled the extension for itself leaves them)
    source = ".globl f\nf:\n" + "    .insn 4, 0x60b55533\n    .insn 4, 0x60251513\n" * 8 \
        + "    ret\n"
    lib = riscv_cc(source, "libhidden.so", "-shared", "-nostdlib", suffix=".S").read_bytes()
    wheel = make_wheel(tmp_path, {"demo/_hidden.so": lib})
    assert rvforge_cli("--quiet", "audit", str(wheel)).returncode == 0
    result = rvforge_cli("--quiet", "audit", "--deep", str(wheel))
    assert result.returncode == 3, result.stdout
    assert "zbb ×8, zbb or zbkb ×8" in result.stdout \
        and "of the RVA profiles, rva22u64 is the first with them" in result.stdout
    code, data = audit_json(rvforge_cli, "--deep", str(wheel))
    [entry] = data["files"]
    assert entry["profile"] == "rva22u64" and "zbb" in entry["requires"]


def test_several_inputs_make_one_report(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    clean = make_wheel(tmp_path / "a", {"demo/_plain.so": objects["plain"]})
    vector = make_wheel(tmp_path / "b", {"demo/_v.so": objects["v"]})
    apk = make_apk(tmp_path, {"usr/lib/libv.so.1": objects["v"]})
    result = rvforge_cli("--quiet", "audit", str(clean), str(vector), str(apk))
    assert result.returncode == 3
    assert result.stdout.rstrip().endswith("FAIL: 3 inputs, 3 ELF files: 2 errors, 0 warnings")
    code, data = audit_json(rvforge_cli, str(clean), str(vector), str(apk))
    assert [(i["kind"], i["profile"], i["summary"]["errors"]) for i in data["inputs"]] == [
        ("wheel", "rva20u64", 0), ("wheel", "rva23u64", 1), ("apk", "rva23u64", 1)]
    assert {f["input"] for f in data["files"]} == {str(clean), str(vector), str(apk)}
    assert data["summary"] == {"inputs": 3, "files": 3, "errors": 2, "warnings": 0}
    sarif = json.loads(rvforge_cli("--quiet", "audit", "--format", "sarif", str(clean),
                                   str(vector)).stdout)
    assert [run["properties"]["input"] for run in sarif["runs"]] == [str(clean), str(vector)]


def test_apk_and_deb_members_are_audited_at_their_installed_paths(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path) -> None:
    members = {"usr/lib/libv.so.1": objects["v"], "usr/lib/libplain.so.1": objects["plain"],
               "usr/share/doc/demo/README": b"not an ELF file\n"}
    for package in (make_apk(tmp_path, members), make_deb(tmp_path, members)):
        code, data = audit_json(rvforge_cli, "--isa", "rv64gc", str(package))
        assert code == 3
        assert {f["path"]: f["profile"] for f in data["files"]} == {
            "/usr/lib/libv.so.1": "rva23u64", "/usr/lib/libplain.so.1": "rva20u64"}
        [finding] = data["findings"]
        assert finding["path"] == "/usr/lib/libv.so.1" and finding["code"] == "isa-required"
        assert data["inputs"][0]["machines"] == [m for m in data["inputs"][0]["machines"]
                                                 if "v" in m or "max" in m or "rva23" in m
                                                 or m == "spacemit-k1"]  # K1: RVV 1.0


@pytest.mark.parametrize("compression", ["gz", "zst", ""])
def test_deb_data_tar_of_any_compression(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path,
        compression: str) -> None:
    deb = make_deb(tmp_path, {"usr/lib/libzbb.so.1": objects["zbb"]}, compression)
    code, data = audit_json(rvforge_cli, "--isa", "rva22u64", str(deb))
    assert code == 0 and [f["path"] for f in data["files"]] == ["/usr/lib/libzbb.so.1"]
    assert data["inputs"][0]["profile"] == "rva22u64"


def test_package_members_stay_in_memory(objects: dict[str, bytes], tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, {"demo/_plain.so": objects["plain"], "demo/x.py": b"x = 1\n"})
    with BuildContext(build_registry(load_entrypoints=False),
                      scratch_dir=tmp_path / "scratch") as ctx:
        loaded = load_input(wheel, ctx)
        assert not (tmp_path / "scratch").exists() or not any(
            (tmp_path / "scratch").rglob("*.so"))
    assert isinstance(loaded, Package) and loaded.members == 5
    files = [e for e in loaded.tree.walk() if e.kind is EntryKind.FILE]
    assert [e.path for e in files] == ["/demo/_plain.so"]
    assert isinstance(files[0].content, InlineBytes)


def dotdot_zip(directory: Path) -> Path:
    path = directory / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo/../../etc/cron.d/evil", b"* * * * * root sh\n")
    return path


def bomb_zip(directory: Path) -> Path:
    """Two central-directory entries sharing one member's compressed bytes."""
    path = directory / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a", b"\0" * 100_000)
        archive.writestr("b", b"\0" * 100_000)
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the second entry's record: point it at the first
    struct.pack_into("<I", data, central + 42, 0)
    path.write_bytes(bytes(data))
    return path


def declared_bomb_zip(directory: Path) -> Path:
    """One member whose central directory claims 1 TiB from a few bytes."""
    path = directory / "huge.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a", b"\0" * 100_000)
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("dotdot", "member 'demo/../../etc/cron.d/evil': path contains '..'"),
    ("lying-record", "RECORD says 'demo/_plain.so' has sha256="),
    ("unlisted", "'demo/extra.so' is not in its RECORD"),
    ("bomb", "overlap (a zip bomb)"),
    ("declared-bomb", "a zip bomb"),
    ("truncated-deb", "truncated .deb (member 'data.tar.xz' claims"),
    ("truncated-wheel", "not a zip archive, or truncated or corrupt"),
    ("truncated-apk", "truncated or corrupt"),
])
def test_bad_packages_exit_2_with_one_line(
        rvforge_cli: RunRvforge, objects: dict[str, bytes], tmp_path: Path, case: str,
        message: str) -> None:
    members = {"demo/_plain.so": objects["plain"]}
    if case == "dotdot":
        path = dotdot_zip(tmp_path)
    elif case == "lying-record":
        path = make_wheel(tmp_path, members, lie="demo/_plain.so")
    elif case == "unlisted":
        path = make_wheel(tmp_path, members)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("demo/extra.so", objects["v"])
    elif case == "bomb":
        path = bomb_zip(tmp_path)
    elif case == "declared-bomb":
        path = declared_bomb_zip(tmp_path)
    elif case == "truncated-deb":
        whole = make_deb(tmp_path, {"usr/lib/libplain.so": objects["plain"]})
        path = tmp_path / "cut.deb"
        path.write_bytes(whole.read_bytes()[:-300])
    elif case == "truncated-wheel":
        whole = make_wheel(tmp_path, members)
        path = tmp_path / "cut-1.0-py3-none-manylinux_2_31_riscv64.whl"
        path.write_bytes(whole.read_bytes()[:-100])
    else:
        whole = make_apk(tmp_path, {"usr/lib/libplain.so": objects["plain"]})
        path = tmp_path / "cut.apk"
        path.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2 + 400])
    result = rvforge_cli("--quiet", "audit", str(path))
    assert_one_line_error(result, 2, message)
    assert str(path) in result.stderr


@pytest.fixture(scope="module")
def built_packages(
        objects: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    where = tmp_path_factory.mktemp("fuzz-packages")
    members = {"usr/lib/libplain.so": objects["plain"], "usr/share/doc/x": b"doc\n"}
    return {"wheel": make_wheel(where, {"demo/_plain.so": objects["plain"]}).read_bytes(),
            "deb": make_deb(where, members).read_bytes(),
            "apk": make_apk(where, members).read_bytes()}


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["wheel", "deb", "apk"]), data=st.data())
def test_corrupted_packages_give_a_result_or_an_input_error(
        built_packages: dict[str, bytes], tmp_path: Path, kind: str,
        data: st.DataObject) -> None:
    blob = bytearray(built_packages[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at:at + 4] = data.draw(st.binary(min_size=1, max_size=4))
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(1, len(blob))):]
    path = tmp_path / f"fuzz.{'whl' if kind == 'wheel' else kind}"
    path.write_bytes(bytes(blob))
    try:
        read_package(path, kind)
    except InputError:
        pass


@pytest.mark.parametrize(("name", "baseline"), [
    ("demo-1.0-cp312-cp312-manylinux_2_31_riscv64.whl", "manylinux_2_31_riscv64"),
    ("demo-1.0-1-cp312-cp312-musllinux_1_2_riscv64.whl", "musllinux_1_2_riscv64"),
    ("demo-1.0-cp312-abi3-manylinux_2_17_x86_64.manylinux_2_31_riscv64.whl",
     "manylinux_2_31_riscv64"),
    ("demo-1.0-cp312-cp312-linux_riscv64.whl", None),  # not a tag PyPI promises anything for
    ("demo-1.0-py3-none-any.whl", None),
])
def test_the_baseline_comes_from_the_wheels_riscv64_platform_tag(name: str,
                                                                 baseline: str | None) -> None:
    from rvforge.cli.audit import wheel_baseline
    from rvforge.formats.wheel import wheel_platforms

    target = wheel_baseline(Package(Path(name), "wheel", platforms=wheel_platforms(Path(name))))
    assert (target.name if target else None) == baseline
    assert target is None or target.isa == "rva20u64"
