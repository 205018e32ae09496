"""``--configure binfmt``: a trixie minbase configured in a chroot through a registered
qemu-riscv64 binfmt_misc handler, with and without the ``F`` flag, and every precondition
failing with its exit code and one line.

Needs root (CI runs as root). The session fixture ``riscv64_binfmt`` mounts binfmt_misc if
it is not, registers the handler docs/debian.md documents if no enabled handler runs
riscv64 programs, and takes back what it did at the end. The error cases that need another
binfmt_misc state get it in namespaces of their own (a tmpfs over binfmt_misc in a private
mount namespace; a fresh binfmt_misc instance in a user namespace), so the host's handlers
are never changed under other processes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from rvforge import BuildContext, InputError, ToolMissingError, Tree, build_registry
from rvforge.formats.tar import read_tarball
from rvforge.log import configure_logging
from rvforge.testing import assert_one_line_error

from .debian_builds import DebianBuild, build_debian
from rvforge_debootstrap import binfmt
from rvforge_debootstrap.binfmt import (
    BINFMT_DIR,
    Handler,
    configure_in_chroot,
    elf_headers,
    find_handlers,
    is_static,
    read_handler,
)
from rvforge_debootstrap.configure import auto_mode
from rvforge_debootstrap.firstboot import HOOK, ORDER_FILE, adopt_configured, not_configured

DOCS = Path(__file__).resolve().parents[2] / "docs" / "debian.md"
QEMU_STATIC = Path("/usr/bin/qemu-riscv64-static")
QEMU_DYNAMIC = Path("/usr/bin/qemu-riscv64")
DEBIAN_P_WRAPPER = "/usr/libexec/qemu-binfmt/riscv64-binfmt-P"
"""qemu-user-static's interpreter for the P flag: a symlink to qemu-riscv64-static, in a
directory a Debian root filesystem does not have."""


def documented_registration() -> str:
    """The line docs/debian.md tells users to write to binfmt_misc's ``register``."""
    found = re.search(r"^echo '(:qemu-riscv64:M::[^']+)' > /proc/sys/fs/binfmt_misc/register$",
                      DOCS.read_text(), re.MULTILINE)
    assert found, f"{DOCS} no longer shows how to register the qemu-riscv64 handler"
    return found.group(1)


def registration(name: str, interpreter: str, flags: str) -> str:
    """The documented registration under another name, interpreter and flags."""
    fields = documented_registration().split(":")
    fields[1], fields[6], fields[7] = name, interpreter, flags
    return ":".join(fields)


@pytest.fixture(scope="session")
def riscv64_binfmt() -> Iterator[list[Handler]]:
    """The enabled binfmt_misc handlers that run riscv64 programs (one registered here if
    there was none)."""
    if os.geteuid() != 0:
        pytest.fail("the --configure binfmt tests need root (CI runs them as root)")
    mounted = False
    if not (BINFMT_DIR / "register").exists():
        result = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"cannot mount binfmt_misc at {BINFMT_DIR} ({result.stderr.strip()}): "
                        "the --configure binfmt tests need it (modprobe binfmt_misc?)")
        mounted = True
    registered = None
    try:
        try:
            handlers = find_handlers("riscv64")
        except ToolMissingError:
            if not QEMU_STATIC.exists():
                pytest.fail(f"{QEMU_STATIC} is missing: apt-get install qemu-user-static "
                            "(.ci/apt-packages lists it)")
            name = ("qemu-riscv64" if not (BINFMT_DIR / "qemu-riscv64").exists()
                    else "rvforge-test-riscv64")
            (BINFMT_DIR / "register").write_text(
                registration(name, str(QEMU_STATIC), "F"))
            registered = BINFMT_DIR / name
            handlers = find_handlers("riscv64")
        yield handlers
    finally:
        if registered is not None:
            registered.write_text("-1")
        if mounted and {p.name for p in BINFMT_DIR.iterdir()} <= {"register", "status"}:
            subprocess.run(["umount", str(BINFMT_DIR)], check=True)


@pytest.fixture
def extra_handler(riscv64_binfmt: list[Handler]) -> Iterator[Callable[[str, str, str], None]]:
    """``extra_handler(name, interpreter, flags)`` registers one more riscv64 handler for
    the test (the kernel tries the newest first) and unregisters it afterwards."""
    added: list[Path] = []

    def register(name: str, interpreter: str, flags: str) -> None:
        (BINFMT_DIR / "register").write_text(registration(name, interpreter, flags))
        added.append(BINFMT_DIR / name)

    try:
        yield register
    finally:
        for entry in added:
            entry.write_text("-1")


# -- without the mirror ------------------------------------------------------------------

def test_the_registered_handler_runs_riscv64_only(riscv64_binfmt: list[Handler]) -> None:
    for handler in riscv64_binfmt:
        assert handler.enabled
        assert all(handler.accepts(h) for h in elf_headers("riscv64"))
        x86_64 = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00"
        riscv32 = b"\x7fELF\x01\x01\x01" + bytes(9) + b"\x02\x00\xf3\x00"
        relocatable = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x01\x00\xf3\x00"
        assert not any(handler.accepts(h) for h in (x86_64, riscv32, relocatable))
    assert read_handler(BINFMT_DIR / "status") is None
    assert read_handler(BINFMT_DIR / "register") is None


def test_with_a_registered_handler_auto_configures_through_binfmt(
        riscv64_binfmt: list[Handler]) -> None:
    with BuildContext(build_registry()) as ctx:
        for kind in ("initramfs", "disk", "tar"):
            ctx.artifact_kind = kind
            assert auto_mode(ctx, "riscv64") == "binfmt"


def test_static_and_dynamic_interpreters() -> None:
    assert is_static(QEMU_STATIC)  # static-pie: a PT_DYNAMIC but no PT_INTERP
    assert not is_static(QEMU_DYNAMIC)
    assert not is_static(DOCS)  # not an ELF file


def test_not_configured_names_every_unfinished_state() -> None:
    status = "\n\n".join(
        f"Package: {name}\nStatus: {state}\nDescription: x\n a: b"
        for name, state in [("done", "install ok installed"), ("gone", "deinstall ok config-files"),
                            ("unpacked", "install ok unpacked"),
                            ("half", "install ok half-configured"),
                            ("trig", "install ok triggers-pending")])
    assert not_configured(status) == ["unpacked", "half", "trig"]


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("state", ["unpacked", "installed"])
def test_adopt_configured_replaces_the_tree_only_if_dpkg_finished(
        state: str, tmp_path: Path) -> None:
    tarball = write_tar(tmp_path / "configured.tar", {
        "./var/lib/dpkg/status": f"Package: a\nStatus: install ok {state}\n".encode(),
        "./etc/new": b"new"})
    tree = Tree()
    tree.add_file("/etc/old", b"old")
    store = tmp_path / "store"
    store.mkdir()
    if state == "unpacked":
        with pytest.raises(InputError, match=r"^--configure binfmt: dpkg left 1 package\(s\) "
                           r"unconfigured \(a\); see here, or use --configure first-boot$"):
            adopt_configured(tree, tarball, store, "binfmt", "see here")
        assert tree.paths() == ["/", "/etc", "/etc/old"] and not store.exists()
    else:
        adopt_configured(tree, tarball, store, "binfmt", "see here")
        assert sorted(tree.paths()) == ["/", "/etc", "/etc/new", "/var", "/var/lib",
                                        "/var/lib/dpkg", "/var/lib/dpkg/status"]
        assert tree.read_bytes("/etc/new") == b"new"
    assert not tarball.exists()


# -- the chroot, on the Alpine minirootfs (riscv64 busybox): no mirror needed -----------

def alpine_with_hook(alpine_tarball: Path, store: Path, *lines: str) -> Tree:
    """The Alpine minirootfs with ``lines`` as the first-boot hook."""
    tree = read_tarball(alpine_tarball, store)
    tree.add_file(HOOK, "".join(f"{line}\n" for line in ["#!/bin/sh", *lines]).encode(),
                  mode=0o755)
    return tree


def chroot_lines(logs: list[dict[str, object]]) -> list[str]:
    return [str(entry["line"]) for entry in logs if entry["event"] == "chroot"]


@pytest.fixture
def debug_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The log events of the test, debug included, whatever level an earlier test (or
    CLI run in this process) configured."""
    saved = structlog.get_config()
    configure_logging(verbose=1)
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def test_the_hook_runs_isolated_with_a_clean_environment(
        riscv64_binfmt: list[Handler], alpine_tarball: Path, tmp_path: Path,
        debug_logs: list[dict[str, object]]) -> None:
    tree = alpine_with_hook(
        alpine_tarball, tmp_path / "store",
        'echo "PID $$"',
        'echo "ENV $(env | cut -d= -f1 | sort | tr "\\n" " ")"',
        'echo "DEV $(ls /dev | tr "\\n" " ")"',
        'echo "MOUNTS $(cut -d" " -f5 /proc/self/mountinfo | tr "\\n" " ")"',
        "hostname rvforge-chroot-test && echo \"HOSTNAME $(hostname)\"",
        "echo last words; exit 7")
    hostname = socket.gethostname()
    with BuildContext(
            build_registry(), cache_dir=tmp_path / "cache",
            scratch_dir=tmp_path / "scratch") as ctx, pytest.raises(InputError) as error:
        configure_in_chroot(tree, riscv64_binfmt, 1, ctx)
    message = str(error.value)
    assert message.startswith("--configure binfmt: configuring failed in the chroot (exit "
                              "status 7): ") and message.endswith("last words")
    lines = dict(line.split(" ", 1) for line in chroot_lines(debug_logs))
    assert lines["PID"] == "1", "the hook is PID 1 of a PID namespace of its own"
    assert set(lines["ENV"].split()) - {"PWD", "SHLVL"} == {
        "DEBIAN_FRONTEND", "HOME", "LC_ALL", "PATH"}
    assert set(lines["DEV"].split()) == {"fd", "full", "null", "pts", "random", "shm",
                                         "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
    assert set(lines["MOUNTS"].split()) == {  # the host's other mounts are out of sight
        "/proc", "/sys", "/dev", "/tmp", "/run",
        *(f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom", "tty"))}
    assert lines["HOSTNAME"] == "rvforge-chroot-test" and socket.gethostname() == hostname
    assert list((tmp_path / "scratch" / "debootstrap" / "binfmt").iterdir()) == [], \
        "the chroot directory is removed after a failure"
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


def test_a_hook_that_hangs_is_killed_at_the_timeout(
        riscv64_binfmt: list[Handler], alpine_tarball: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binfmt, "TIMEOUT", 3.0)
    tree = alpine_with_hook(alpine_tarball, tmp_path / "store",
                            "echo going to sleep; sleep 86399 & sleep 86398")
    with BuildContext(build_registry(), cache_dir=tmp_path / "cache",
                      scratch_dir=tmp_path / "scratch") as ctx, \
            pytest.raises(InputError, match="did not finish in 3 s: going to sleep"):
        configure_in_chroot(tree, riscv64_binfmt, 1, ctx)
    sleepers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and b"8639" in _cmdline(p)]
    assert sleepers == [], "every process of the chroot is gone with its PID namespace"
    assert list((tmp_path / "scratch" / "debootstrap" / "binfmt").iterdir()) == []


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


# -- builds against the mirror -----------------------------------------------------------

@pytest.mark.network
@pytest.mark.qemu
@pytest.mark.slow
def test_binfmt_minbase_is_configured_and_boots(
        riscv64_binfmt: list[Handler], debian_default_image: DebianBuild, debian_cache: Path,
        tmp_path: Path, rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """With the handler, the README's one-liner (``--configure auto``) is this very build:
    its session image is checked rather than built a second time (40-80 s); where auto chose
    otherwise (no handler when it was built), ``--configure binfmt`` builds one here."""
    if "--configure auto: binfmt" in debian_default_image.log:
        built = debian_default_image
    else:
        built = build_debian(tmp_path, "debian.cpio.gz", "--configure", "binfmt",
                             cache=debian_cache)
    image, env = built.image, {"RVFORGE_CACHE_DIR": str(debian_cache)}
    assert "configured in a chroot" in built.log
    print(f"--configure binfmt build: {built.seconds:.1f} s")
    assert list(built.scratch.iterdir()) == [], "the scratch space (and the chroot in it) is gone"
    assert str(built.scratch.parent) not in Path("/proc/self/mountinfo").read_text(), \
        "no mount leaked"

    result = rvforge_cli("run", str(image), "--", "sh", "-c",
                         "echo AUDIT; dpkg --audit; echo STATUS=$?; "
                         f"ls {HOOK} {ORDER_FILE} 2>&1; "
                         "dpkg-query -W -f='${db:Status-Abbrev}\\n' | sort -u; "
                         "stat -c '%u %g %a' /etc/shadow; grep '^root:' /etc/passwd",
                         env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    audit, rest = result.stdout.split("AUDIT\n", 1)[1].split("STATUS=", 1)
    assert audit == "", f"dpkg --audit reported:\n{audit}"
    lines = [line.strip() for line in rest.splitlines()]
    assert lines[0] == "0"
    assert "No such file" in lines[1] and "No such file" in lines[2], "the hook removed itself"
    assert lines[3:] == ["ii", "0 42 640", "root:x:0:0:root:/root:/bin/bash"]


@pytest.mark.network
@pytest.mark.slow
def test_a_handler_without_f_gets_its_interpreter_copied_in_and_out(
        extra_handler: Callable[[str, str, str], None], debian_cache: Path, tmp_path: Path,
        rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """Debian's P-flag wrapper, a symlink, in a directory the tree lacks: the kernel looks
    it up inside the chroot, so it is copied there for the run and taken out after."""
    if not Path(DEBIAN_P_WRAPPER).exists():
        pytest.fail(f"{DEBIAN_P_WRAPPER} is missing: apt-get install qemu-user-static")
    extra_handler("rvforge-test-nof-riscv64", DEBIAN_P_WRAPPER, "P")
    out = tmp_path / "debian.tar"
    built = rvforge_cli("build", "--provider", "debootstrap", "--configure", "binfmt",
                        "-o", str(out), env={"RVFORGE_CACHE_DIR": str(debian_cache)},
                        timeout=900)
    assert built.returncode == 0, built.stderr[-3000:]
    assert f"rvforge-test-nof-riscv64={DEBIAN_P_WRAPPER}:P" in built.stderr
    with tarfile.open(out) as archive:
        members = {m.name.removeprefix("./"): m for m in archive.getmembers()}
        status_file = archive.extractfile(members["var/lib/dpkg/status"])
        status = (status_file or io.BytesIO()).read().decode()
    assert not_configured(status) == []
    assert "usr/libexec/qemu-binfmt" not in members, "the copy and its directory are gone"
    assert "usr/libexec/dpkg/dpkg-db-backup" in members, "/usr/libexec itself stays"
    assert HOOK.lstrip("/") not in members
    shadow = members["etc/shadow"]
    assert (shadow.uid, shadow.gid, shadow.mode) == (0, 42, 0o640)


# -- preconditions -----------------------------------------------------------------------

USERNS = ["--user", "--map-root-user", "--mount"]
FRESH = f"mount -t binfmt_misc binfmt_misc {BINFMT_DIR}"
ERROR_CASES = {
    # name: (unshare's namespaces, shell that makes the state, exit code, message)
    "binfmt_misc not mounted": (
        ["--mount"], f"mount -t tmpfs -o ro tmpfs {BINFMT_DIR}", 125,
        f"binfmt_misc is not mounted at {BINFMT_DIR}: mount -t binfmt_misc"),
    "no handler": (
        USERNS, FRESH, 125, f"no binfmt_misc handler in {BINFMT_DIR} runs riscv64 programs"),
    "handler disabled": (
        USERNS, (f"{FRESH} && printf '%s\\n' \"$REGISTER_STATIC\" > {BINFMT_DIR}/register "
                 f"&& echo 0 > {BINFMT_DIR}/qemu-riscv64"), 125,
        f"handler {BINFMT_DIR}/qemu-riscv64 is disabled: echo 1 > {BINFMT_DIR}/qemu-riscv64"),
    "binfmt_misc disabled": (
        USERNS, f"{FRESH} && echo 0 > {BINFMT_DIR}/status", 125,
        f"binfmt_misc is disabled: echo 1 > {BINFMT_DIR}/status"),
    "dynamic interpreter without F": (
        USERNS, f"{FRESH} && printf '%s\\n' \"$REGISTER_DYNAMIC\" > {BINFMT_DIR}/register",
        125, f"interpreter {QEMU_DYNAMIC} is dynamically linked and the handler lacks the F"),
}


@pytest.mark.network
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_binfmt_preconditions(case: str, debian_cache: Path, tmp_path: Path) -> None:
    """Each in namespaces of its own: a fresh binfmt_misc instance in a user namespace
    (Linux 6.7 and later), or a tmpfs hiding the host's, so the host never sees it."""
    flags, setup, code, message = ERROR_CASES[case]
    out = tmp_path / "debian.tar"
    rvforge = Path(sys.executable).with_name("rvforge")
    script = (f'{{ {setup}; }} || {{ echo "namespace set-up failed" >&2; exit 99; }}; '
              f'exec {rvforge} --quiet build --provider debootstrap --configure binfmt '
              f'-o {out}')
    env = {**os.environ, "RVFORGE_CACHE_DIR": str(debian_cache),
           "REGISTER_STATIC": registration("qemu-riscv64", str(QEMU_STATIC), ""),
           "REGISTER_DYNAMIC": registration("qemu-riscv64", str(QEMU_DYNAMIC), "")}
    result = subprocess.run(["unshare", *flags, "--propagation", "private", "sh", "-c",
                             script], capture_output=True, text=True, env=env, timeout=600,
                            check=False)
    if result.returncode == 99:
        pytest.fail(f"{case}: cannot make the binfmt_misc state ({result.stderr.strip()}); "
                    "a binfmt_misc of its own in a user namespace needs Linux 6.7 or later")
    assert_one_line_error(result, code, message)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.network
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to uid 65534 needs root")
def test_binfmt_as_an_unprivileged_user_is_a_usage_error(
        debian_cache: Path, tmp_path: Path, nobody_can_run_rvforge: Path,
        rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """As uid 65534, on a copy of the (warm) cache it can write to."""
    warm = rvforge_cli("build", "--provider", "debootstrap", "--configure", "none",
                       "--no-audit", "-o", str(tmp_path / "warm.tar"),
                       env={"RVFORGE_CACHE_DIR": str(debian_cache)}, timeout=900)
    assert warm.returncode == 0, warm.stderr[-3000:]
    base = Path(tempfile.mkdtemp(prefix="rvforge-nobody-"))
    try:
        base.chmod(0o755)
        cache, home = base / "cache", base / "home"
        cache.mkdir()
        copy = subprocess.run(["cp", "-al", str(debian_cache / "debian"), str(cache)],
                              capture_output=True, check=False)
        if copy.returncode != 0:  # another file system: copy the bytes
            shutil.rmtree(cache / "debian", ignore_errors=True)
            subprocess.run(["cp", "-a", str(debian_cache / "debian"), str(cache)], check=True)
        for directory in [cache, *(p for p in cache.rglob("*") if p.is_dir())]:
            os.chown(directory, 65534, 65534)  # new directories; the files stay shared
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        out = home / "debian.tar"
        result = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--",
             str(nobody_can_run_rvforge), "--quiet", "build", "--provider", "debootstrap",
             "--configure", "binfmt", "-o", str(out)],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "xdg"),
                 "TMPDIR": str(home), "RVFORGE_CACHE_DIR": str(cache)})
        assert_one_line_error(result, 2, "--configure binfmt needs root")
        assert "use --configure vm" in result.stderr
        assert not out.exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.network
def test_mmdebstrap_backend_configures_through_the_handler(
        riscv64_binfmt: list[Handler], tmp_path: Path,
        rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """``--backend mmdebstrap --configure binfmt``: the real tool installs minbase through
    the handler (it needs arch-test to see it) and rvforge reads the result back."""
    out = tmp_path / "mmdebstrap.tar"
    result = rvforge_cli("build", "--provider", "debootstrap", "--backend", "mmdebstrap",
                         "--configure", "binfmt", "--no-audit", "-o", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with tarfile.open(out) as archive:
        status = (archive.extractfile("./var/lib/dpkg/status") or io.BytesIO()).read().decode()
        passwd = (archive.extractfile("./etc/passwd") or io.BytesIO()).read().decode()
        shadow = archive.getmember("./etc/shadow")
    states = re.findall(r"^Status: (.*)$", status, re.MULTILINE)
    assert len(states) > 70 and set(states) == {"install ok installed"}
    assert passwd.startswith("root:x:0:0:") and (shadow.uid, shadow.gid) == (0, 42)
