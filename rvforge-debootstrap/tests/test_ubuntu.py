"""Ubuntu riscv64 (``--distribution ubuntu``) from a loopback mirror in Ubuntu's ports
layout: ``dists/SUITE/{main,universe}/binary-riscv64/`` served by hash, an ``InRelease``
clearsigned by a throwaway GnuPG key, real ``.deb`` files (``dpkg-deb --build``) holding
real riscv64 programs. Ubuntu's own mirror is not reachable from here."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixture_types import RiscvCC

from rvforge.testing import LoopbackMirror, loopback_mirror

from rvforge_debootstrap.distribution import DEBIAN, UBUNTU, default_machine, is_rva23_release
from rvforge_debootstrap.mirror import choose_mirror

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
VECTOR_C = r"""
#include <stdio.h>
int main(void) {
    unsigned long vl;
    __asm__ volatile ("vsetvli %0, zero, e32, m1, ta, ma" : "=r"(vl));
    printf("vl=%lu\n", vl);
    return 0;
}
"""
PLAIN_C = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n"
RELEASES = {"questing": "25.10", "noble": "24.04"}


@dataclass
class UbuntuMirror:
    served: LoopbackMirror
    keyring: Path
    other_keyring: Path

    @property
    def url(self) -> str:
        return f"{self.served.url}/ubuntu-ports"


def gpg(home: Path, *args: str) -> bytes:
    result = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes",
                             "--pinentry-mode", "loopback", "--passphrase", "", *args],
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def make_key(home: Path, keyring: Path) -> None:
    home.mkdir(mode=0o700, parents=True)
    gpg(home, "--quick-gen-key", "rvforge ubuntu test <test@example.invalid>", "ed25519",
        "sign", "never")
    keyring.write_bytes(gpg(home, "--export"))


def make_deb(root: Path, out: Path, control: dict[str, str], files: dict[str, Path | str]
             ) -> Path:
    """A real ``.deb`` built by ``dpkg-deb --build`` from ``files`` (path → host file or
    text)."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "".join(f"{k}: {v}\n" for k, v in control.items()))
    for path, content in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, dest)
            dest.chmod(0o755)
        else:
            dest.write_text(content)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
                   check=True, capture_output=True)
    return out


def paragraph(control: dict[str, str], deb: Path, filename: str) -> str:
    data = deb.read_bytes()
    fields = {**control, "Filename": filename, "Size": str(len(data)),
              "SHA256": hashlib.sha256(data).hexdigest()}
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


def publish_suite(root: Path, suite: str, version: str, home: Path,
                  components: dict[str, list[str]]) -> None:
    """``dists/SUITE`` as Ubuntu serves it: by-hash indexes, a clearsigned InRelease."""
    dists = root / "dists" / suite
    sums = []
    for component, paragraphs in components.items():
        packed = lzma.compress("\n".join(paragraphs).encode())
        digest = hashlib.sha256(packed).hexdigest()
        where = dists / component / "binary-riscv64"
        (where / "by-hash" / "SHA256").mkdir(parents=True)
        (where / "by-hash" / "SHA256" / digest).write_bytes(packed)
        (where / "Packages.xz").write_bytes(packed)
        sums.append(f" {digest} {len(packed)} {component}/binary-riscv64/Packages.xz")
    release = dists / "Release"
    release.write_text(
        f"Origin: Ubuntu\nLabel: Ubuntu\nSuite: {suite}\nVersion: {version}\n"
        f"Codename: {suite}\nDate: Thu, 09 Oct 2025 12:00:00 UTC\n"
        "Architectures: amd64 arm64 armhf ppc64el riscv64 s390x\n"
        "Components: main restricted universe multiverse\n"
        "Description: Ubuntu (test mirror)\nAcquire-By-Hash: yes\n"
        "SHA256:\n" + "\n".join(sums) + "\n")
    gpg(home, "--clearsign", "--output", str(dists / "InRelease"), str(release))


@pytest.fixture(scope="module")
def ubuntu_mirror(tmp_path_factory: pytest.TempPathFactory, riscv_cc: RiscvCC
                  ) -> Iterator[UbuntuMirror]:
    if shutil.which("gpg") is None or shutil.which("dpkg-deb") is None:
        pytest.fail("gpg and dpkg-deb are needed: apt-get install gnupg dpkg (.ci/run does)")
    top = tmp_path_factory.mktemp("ubuntu")
    root = top / "www" / "ubuntu-ports"
    make_key(top / "gnupg", top / "ubuntu-test.gpg")
    make_key(top / "other-gnupg", top / "other.gpg")
    vector = riscv_cc(VECTOR_C, "vsum-rva23", "-static", "-O2", "-march=rv64gcv_zba_zbb_zbs")
    plain = riscv_cc(PLAIN_C, "hello-rv64gc", "-static", "-O2")
    for suite, version in RELEASES.items():
        base = {"Package": "base-files", "Version": f"14ubuntu{version}",
                "Architecture": "riscv64", "Essential": "yes", "Priority": "required",
                "Section": "admin", "Maintainer": "test <test@example.invalid>",
                "Description": "Ubuntu base files (test)"}
        app = {"Package": "vsum", "Version": "1.0-1", "Architecture": "riscv64",
               "Priority": "optional", "Section": "universe/misc",
               "Depends": "base-files", "Maintainer": "test <test@example.invalid>",
               "Description": "a program for the suite's CPU (test)"}
        os_release = (f'NAME="Ubuntu"\nVERSION_ID="{version}"\nVERSION_CODENAME={suite}\n'
                      "ID=ubuntu\nID_LIKE=debian\n")
        program = vector if is_rva23_release(UBUNTU, suite) else plain
        base_name = f"pool/main/b/base-files/base-files_14ubuntu{version}_riscv64.deb"
        app_name = f"pool/universe/v/vsum/vsum_1.0-1_{suite}_riscv64.deb"
        base_deb = make_deb(top / "stage", root / base_name, base,
                            {"/etc/os-release": os_release})
        app_deb = make_deb(top / "stage", root / app_name, app, {"/usr/bin/vsum": program})
        publish_suite(root, suite, version, top / "gnupg", {
            "main": [paragraph(base, base_deb, base_name)],
            "universe": [paragraph(app, app_deb, app_name)],
        })
    with loopback_mirror(top / "www") as served:
        yield UbuntuMirror(served, top / "ubuntu-test.gpg", top / "other.gpg")
    subprocess.run(["gpgconf", "--homedir", str(top / "gnupg"), "--kill", "gpg-agent"],
                   capture_output=True, check=False)


def build(mirror: UbuntuMirror, release: str, output: Path, *args: str,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RVFORGE, "build", "--provider", "debootstrap", "--distribution", "ubuntu",
         "--mirror", mirror.url, "--release", release, "--variant", "extract",
         "--package", "vsum", "-o", str(output), *args],
        check=False, capture_output=True, text=True, timeout=600,
        env={**os.environ, "XDG_CACHE_HOME": str(output.parent / "cache"), **(env or {})})


def members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name.lstrip("./"): (tar.extractfile(m) or open(os.devnull, "rb")).read()
                for m in tar if m.isfile()}


@pytest.mark.qemu
def test_questing_builds_from_main_and_universe_audited_for_rva23(
        ubuntu_mirror: UbuntuMirror, qemu10: Path, tmp_path: Path) -> None:
    output = tmp_path / "questing.tar"
    result = build(ubuntu_mirror, "questing", output, "--keyring", str(ubuntu_mirror.keyring),
                   env={"RVFORGE_QEMU": str(qemu10)})
    assert result.returncode == 0, result.stderr
    assert "  audit for qemu-virt-rva23 (rv64imafdcbvh_" in result.stdout
    assert "0 errors" in result.stdout
    files = members(output)
    assert b'VERSION_ID="25.10"' in files["etc/os-release"]
    assert files["usr/bin/vsum"].startswith(b"\x7fELF")
    fetched = [path for path, _ in ubuntu_mirror.served.requests]
    for component in ("main", "universe"):
        assert any(p.startswith(f"/ubuntu-ports/dists/questing/{component}/binary-riscv64/"
                                "by-hash/SHA256/") for p in fetched), fetched


def test_noble_defaults_to_qemu_virt_and_its_rv64gc_program_passes(
        ubuntu_mirror: UbuntuMirror, tmp_path: Path) -> None:
    output = tmp_path / "noble.tar"
    result = build(ubuntu_mirror, "noble", output, "--keyring", str(ubuntu_mirror.keyring))
    assert result.returncode == 0, result.stderr
    assert "  audit for qemu-virt (rv64imafdch_" in result.stdout
    assert b'VERSION_CODENAME=noble' in members(output)["etc/os-release"]


def test_an_rva23_release_on_a_qemu_without_rva23_is_refused_before_downloading(
        ubuntu_mirror: UbuntuMirror, tmp_path: Path) -> None:
    before = len(ubuntu_mirror.served.requests)
    result = build(ubuntu_mirror, "questing", tmp_path / "q.tar", "--keyring",
                   str(ubuntu_mirror.keyring),
                   env={"RVFORGE_QEMU": "/usr/bin/qemu-system-riscv64"})
    assert result.returncode == 2, result.stderr
    assert ("machine 'qemu-virt-rva23' needs QEMU's CPU model 'rva23s64', which QEMU 7.2."
            in result.stderr)
    assert "(it is the default machine for this image: pass --machine NAME, or --isa" \
        in result.stderr
    assert len(ubuntu_mirror.served.requests) == before
    audited = build(ubuntu_mirror, "questing", tmp_path / "q.tar", "--keyring",
                    str(ubuntu_mirror.keyring), "--isa", "rva23u64",
                    env={"RVFORGE_QEMU": "/usr/bin/qemu-system-riscv64"})
    assert audited.returncode == 0, audited.stderr


def test_an_index_signed_by_another_key_is_refused(ubuntu_mirror: UbuntuMirror,
                                                   tmp_path: Path) -> None:
    output = tmp_path / "n.tar"
    result = build(ubuntu_mirror, "noble", output, "--keyring",
                   str(ubuntu_mirror.other_keyring))
    assert result.returncode == 2, result.stderr
    assert "noble InRelease" in result.stderr and "signature check failed" in result.stderr
    assert not output.exists()


def test_ubuntus_keyring_is_the_default(ubuntu_mirror: UbuntuMirror, tmp_path: Path) -> None:
    if UBUNTU.keyring.exists():
        pytest.skip(f"{UBUNTU.keyring} is installed here")
    result = build(ubuntu_mirror, "noble", tmp_path / "n.tar")
    assert result.returncode == 125, result.stderr
    assert (f"keyring {UBUNTU.keyring} is missing: apt-get install ubuntu-keyring, or pass "
            "--keyring PATH") in result.stderr


def test_the_ubuntu_mirror_comes_from_the_flag_the_variable_or_a_ports_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UBUNTU.mirror_env, raising=False)
    monkeypatch.delenv(DEBIAN.mirror_env, raising=False)
    (tmp_path / "sources.list").write_text(
        "deb http://mirror.invalid/debian bookworm main\n"
        "deb http://mirror.invalid/ubuntu noble main universe\n"
        "deb [arch=riscv64] http://mirror.invalid/ubuntu-ports noble main universe\n")
    assert choose_mirror(None, apt_etc=tmp_path, dist=UBUNTU) == (
        "http://mirror.invalid/ubuntu-ports")
    assert choose_mirror(None, apt_etc=tmp_path) == "http://mirror.invalid/debian"
    monkeypatch.setenv(UBUNTU.mirror_env, "http://env.invalid/ubuntu-ports/")
    assert choose_mirror(None, apt_etc=tmp_path, dist=UBUNTU) == (
        "http://env.invalid/ubuntu-ports")
    monkeypatch.delenv(UBUNTU.mirror_env)
    (tmp_path / "sources.list").write_text("deb http://mirror.invalid/debian bookworm main\n")
    with pytest.raises(Exception, match="no Ubuntu mirror: pass --mirror URL \\(Ubuntu keeps "
                                        "riscv64 on its ports archive"):
        choose_mirror(None, apt_etc=tmp_path, dist=UBUNTU)


@pytest.mark.parametrize(("release", "machine"), [
    ("noble", None), ("plucky", None), ("questing", "qemu-virt-rva23"),
    ("questing-updates", "qemu-virt-rva23"), ("resolute", "qemu-virt-rva23"),
    ("devel", "qemu-virt-rva23"),
])
def test_ubuntu_25_10_and_later_default_to_an_rva23_machine(release: str,
                                                            machine: str | None) -> None:
    assert default_machine(UBUNTU, release) == machine
    assert default_machine(DEBIAN, release) is None
