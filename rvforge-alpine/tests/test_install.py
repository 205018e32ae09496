"""Installing apk packages into the real minirootfs from a mirror (local and HTTP)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import BuildContext, EntryKind, InputError, Tree
from rvforge.testing import Fault, loopback_mirror

from .conftest import KEY_NAME
from rvforge_alpine import install_scripts
from rvforge_alpine.installed_db import INSTALLED, SCRIPTS, TRIGGERS, InstalledDb
from rvforge_alpine.installer import InstallRequest, install
from rvforge_alpine.resolver import UnresolvableError
from rvforge_alpine.testing import BuiltApk, FileSpec, build_apk, write_repository

BRANCH = "v3.20"


def repository(key: rsa.RSAPrivateKey) -> dict[str, list[BuiltApk]]:
    """main: a program linked against musl, its library (so: provide), a doc package
    pulled in by install_if, a package with scripts and a root-owned config; community:
    a conflicting package."""
    lib = build_apk(key, KEY_NAME, "libhello", "2.0-r0",
                    files=[FileSpec("usr/lib/libhello.so.2", b"\x7fELF lib")],
                    depends=["so:libc.musl-riscv64.so.1"], provides=["so:libhello.so.2=2.0.0"])
    hello = build_apk(key, KEY_NAME, "hello", "2.0-r0", files=[
        FileSpec("usr/bin/hello", b"\x7fELF hello", mode=0o755),
        FileSpec("etc/hello", mode=0o750, gid=42),
        FileSpec("etc/hello/hello.conf", b"greeting=hi\n", mode=0o640, gid=42),
        FileSpec("var/lib/hello", uid=1000, gid=1000, mode=0o700),
    ], depends=["so:libhello.so.2", "/bin/sh"], provides=["cmd:hello=2.0-r0"],
        scripts={".pre-install": b"#!/bin/sh\naddgroup -S hello\n",
                 ".post-install": b"#!/bin/sh\necho installed $1\n"})
    doc = build_apk(key, KEY_NAME, "hello-doc", "2.0-r0", arch="noarch",
                    files=[FileSpec("usr/share/doc/hello/README", b"read me\n")],
                    install_if=["docs", "hello=2.0-r0"])
    docs = build_apk(key, KEY_NAME, "docs", "1.0-r0", arch="noarch")
    fonts = build_apk(key, KEY_NAME, "fontconfig", "2.15-r0",
                      files=[FileSpec("usr/bin/fc-cache", b"fc", mode=0o755)],
                      scripts={".trigger": b"#!/bin/sh\nfc-cache \"$@\"\n"},
                      triggers=["/usr/share/fonts/*"])
    rival = build_apk(key, KEY_NAME, "hello-rival", "1.0-r0", depends=["!hello"])
    clobber = build_apk(key, KEY_NAME, "clobber", "1.0-r0",
                        files=[FileSpec("bin/busybox", b"not busybox", mode=0o755)])
    return {"main": [lib, hello, doc, docs, fonts, clobber], "community": [rival]}


@pytest.fixture
def mirror_dir(tmp_path: Path, apk_key: rsa.RSAPrivateKey) -> Path:
    root = tmp_path / "mirror"
    for repo, packages in repository(apk_key).items():
        write_repository(root, BRANCH, repo, apk_key, KEY_NAME, packages)
    return root


def run(tree: Tree, ctx: BuildContext, mirror: str, *packages: str, scripts: str = "first-boot"
        ) -> list[str]:
    added = install(tree, InstallRequest(list(packages), mirror, BRANCH, 3, scripts), ctx)
    return [p.label for p in added]


def test_install_from_a_local_mirror(alpine_root: Tree, mirror_dir: Path,
                                     rvforge_context: BuildContext) -> None:
    before = alpine_root.read_text(INSTALLED)
    added = run(alpine_root, rvforge_context, str(mirror_dir), "hello", "docs")
    assert added == ["libhello-2.0-r0", "hello-2.0-r0", "docs-1.0-r0", "hello-doc-2.0-r0"]

    conf = alpine_root["/etc/hello/hello.conf"]
    assert (conf.kind, conf.mode, conf.uid, conf.gid) == (EntryKind.FILE, 0o640, 0, 42)
    state = alpine_root["/var/lib/hello"]
    assert (state.kind, state.mode, state.uid, state.gid) == (EntryKind.DIR, 0o700, 1000, 1000)
    assert alpine_root.read_bytes("/usr/bin/hello") == b"\x7fELF hello"
    assert alpine_root["/usr/bin/hello"].mode == 0o755
    assert alpine_root.is_file("/usr/share/doc/hello/README")

    text = alpine_root.read_text(INSTALLED)
    assert text.startswith(before)  # the existing records are untouched
    db = InstalledDb.parse(text).by_name()
    assert db["hello"].info.checksum.startswith("Q1")
    assert ("R", "hello.conf") in db["hello"].lines and ("a", "0:42:640") in db["hello"].lines
    assert ("M", "1000:1000:700") in db["hello"].lines
    assert alpine_root.read_text("/etc/apk/world").split() == [
        "alpine-baselayout", "alpine-keys", "apk-tools", "busybox", "docs", "hello",
        "libc-utils"]

    with tarfile.open(fileobj=io.BytesIO(alpine_root.read_bytes(SCRIPTS))) as scripts:
        names = scripts.getnames()
    checksum = db["hello"].info.checksum
    assert f"hello-2.0-r0.{checksum}.pre-install" in names
    assert any(n.startswith("busybox-1.36.1-r29.") for n in names)  # old entries kept

    runner = alpine_root.read_text(install_scripts.RUNNER)
    assert alpine_root[install_scripts.RUNNER].mode == 0o755
    pre = runner.index("run 001-hello-2.0-r0.pre-install 2.0-r0")
    assert pre < runner.index("run 001-hello-2.0-r0.post-install 2.0-r0")
    assert alpine_root.read_bytes(
        f"{install_scripts.SCRIPT_DIR}/001-hello-2.0-r0.post-install").startswith(b"#!/bin/sh")


def test_triggers_are_recorded_and_run_last(alpine_root: Tree, mirror_dir: Path,
                                           rvforge_context: BuildContext) -> None:
    run(alpine_root, rvforge_context, str(mirror_dir), "hello", "fontconfig")
    checksum = InstalledDb.parse(alpine_root.read_text(INSTALLED)).by_name()[
        "fontconfig"].info.checksum
    assert f"{checksum} /usr/share/fonts/*\n" in alpine_root.read_text(TRIGGERS)
    lines = alpine_root.read_text(install_scripts.RUNNER).splitlines()
    assert lines[-2] == "run 002-fontconfig-2.15-r0.trigger '/usr/share/fonts/*'"


def test_scripts_skip_writes_no_runner(alpine_root: Tree, mirror_dir: Path,
                                       rvforge_context: BuildContext) -> None:
    run(alpine_root, rvforge_context, str(mirror_dir), "hello", scripts="skip")
    assert install_scripts.RUNNER not in alpine_root
    assert alpine_root.is_file("/usr/bin/hello")


def test_conflict_is_reported_with_its_chain(alpine_root: Tree, mirror_dir: Path,
                                             rvforge_context: BuildContext) -> None:
    with pytest.raises(UnresolvableError, match=r"world → hello-rival: hello-rival-1.0-r0 "
                                                 r"conflicts with hello-2.0-r0 \(!hello\)") as info:
        run(alpine_root, rvforge_context, str(mirror_dir), "hello", "hello-rival")
    assert info.value.exit_code == 2


def test_overwriting_another_packages_file_is_refused(alpine_root: Tree, mirror_dir: Path,
                                                      rvforge_context: BuildContext) -> None:
    with pytest.raises(InputError, match="would overwrite /bin/busybox, which belongs to "
                                         "package 'busybox'"):
        run(alpine_root, rvforge_context, str(mirror_dir), "clobber")


def test_untrusted_repository(minirootfs: Tree, mirror_dir: Path,
                              rvforge_context: BuildContext) -> None:
    with pytest.raises(InputError, match="not among the trusted keys in /etc/apk/keys"):
        run(minirootfs.copy(), rvforge_context, str(mirror_dir), "hello")


def test_http_mirror_parallel_resume_cache_and_offline(
        alpine_root: Tree, mirror_dir: Path, rvforge_context: BuildContext) -> None:
    tree = alpine_root.copy()
    with loopback_mirror(mirror_dir) as mirror:
        path = f"/{BRANCH}/main/riscv64/hello-2.0-r0.apk"
        mirror.faults[path] = Fault(drop_after=100)
        assert run(tree, rvforge_context, mirror.url, "hello")[-1] == "hello-2.0-r0"
        assert [p for p, _ in mirror.requests].count(path) == 2  # dropped, then again

        # a corrupt cached package is discarded and fetched again
        packages = rvforge_context.cache_dir / "alpine" / "packages"
        cached = next(packages.glob("*-hello-2.0-r0.apk"))
        cached.write_bytes(b"garbage" + cached.read_bytes()[7:])
        mirror.requests.clear()
        run(alpine_root.copy(), rvforge_context, mirror.url, "hello")
        assert [p for p, _ in mirror.requests if p.endswith(".apk")] == [path]

    # offline: indexes and packages come from the cache; the server is gone
    offline = dataclasses.replace(rvforge_context, offline=True)
    assert run(alpine_root.copy(), offline, mirror.url, "hello")[-1] == "hello-2.0-r0"
    with pytest.raises(InputError, match="--offline forbids downloading"):
        run(alpine_root.copy(), offline, mirror.url, "fontconfig")
