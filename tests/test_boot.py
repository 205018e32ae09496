"""Booting real images with the real CLI, the real QEMU and Debian's real kernel.

Images are built once per session with ``rvforge build`` from the Alpine fixture; the
kernel is fetched once (``auto``: Debian's, through rvforge-debootstrap's kernel source)
and passed by path afterwards so each run does not re-check the archive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_types import RiscvCC
from pseudo_terminal import Pty
from qemu_processes import guest_running, qemu_running_with
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.testing import assert_one_line_error

pytestmark = [pytest.mark.qemu]
network = pytest.mark.network

RVFORGE = str(Path(sys.executable).with_name("rvforge"))


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RVFORGE, *args], check=False, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path
           ) -> Callable[..., Path]:
    """``images(name, *build_args)`` builds ``name`` from the Alpine fixture once."""
    out = tmp_path_factory.mktemp("images")
    built: dict[str, Path] = {}

    def build(name: str, *args: str) -> Path:
        if name not in built:
            result = cli("build", "--provider", "local", "--source", str(alpine_tarball),
                         *args, "-o", str(out / name))
            assert result.returncode == 0, result.stderr
            built[name] = out / name
        return built[name]

    return build


@pytest.fixture(scope="session")
def alpine(images: Callable[..., Path]) -> Path:
    return images("alpine.cpio.gz")


@network
def test_boot_reaches_the_ready_marker_with_the_auto_kernel(alpine: Path, kernel: Path,
                                                            tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    result = cli("boot", str(alpine), "--console-log", str(log), "--console")
    assert result.returncode == 0, result.stderr
    assert f"booted {alpine} on qemu-virt in" in result.stdout
    console = log.read_text()
    assert "RVFORGE-READY" in console and "reboot: Power down" in console
    assert "Run /init as init process" in result.stderr  # --console: shown as it runs
    assert not qemu_running_with(alpine)


@network
def test_run_prints_only_the_commands_output(alpine: Path, kernel: Path) -> None:
    result = cli("run", str(alpine), "--kernel", str(kernel), "--",
                 "cat", "/etc/alpine-release")
    assert (result.returncode, result.stdout) == (0, "3.20.3\n"), result.stderr


@network
def test_run_exits_with_the_commands_status(alpine: Path, kernel: Path) -> None:
    result = cli("run", str(alpine), "--kernel", str(kernel), "--",
                 "sh", "-c", 'printf "%s|" "$@"; echo err >&2; exit 7', "sh", "it's",
                 "two  words", "$HOME", "-n")
    assert result.returncode == 7, result.stderr
    assert result.stdout == "it's|two  words|$HOME|-n|"
    assert "err\n" in result.stderr


@network
def test_a_hanging_command_hits_the_timeout_and_leaves_no_qemu(alpine: Path, kernel: Path
                                                               ) -> None:
    # a warm restore (the first run saves the snapshot) reaches the command in seconds even
    # on a loaded machine, so the timeout need not leave room for a cold boot
    warm = cli("run", str(alpine), "--kernel", str(kernel), "--", "true")
    assert warm.returncode == 0, warm.stderr
    start = time.monotonic()
    result = cli("run", "-v", str(alpine), "--kernel", str(kernel), "--timeout", "20", "--",
                 "sleep", "600")
    assert result.returncode == 4, result.stderr
    assert time.monotonic() - start < 60
    assert re.search(r"the command ran for \d+ s and was stopped \(--timeout 20 s\)",
                     result.stderr), result.stderr
    # the boot went fine: its console's last lines come only with -v (given here)
    assert "full console log:" in result.stderr and "| RVFORGE-READY" in result.stderr
    assert not qemu_running_with(alpine)


@network
def test_ctrl_c_kills_qemu(alpine: Path, kernel: Path, tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    # SIGINT's default action in the child: a test run started in the background of a
    # non-interactive shell inherits it ignored, and Python then leaves it ignored
    process = subprocess.Popen([RVFORGE, "run", str(alpine), "--kernel", str(kernel),
                                "--console-log", str(log), "--", "sleep", "600"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (log.is_file() and guest_running(log.read_text(), alpine)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert not qemu_running_with(alpine)


@network
def test_first_boot_hooks_run_before_the_ready_marker(images: Callable[..., Path],
                                                      kernel: Path, tmp_path: Path) -> None:
    hooks = tmp_path / "first-boot.d"
    hooks.mkdir()
    (hooks / "10-mark").write_text("#!/bin/sh\necho ran > /run/hook-10\nrm -f \"$0\"\n")
    (hooks / "20-later").write_text("#!/bin/sh\ncat /run/hook-10 > /run/hook-20\n")
    (hooks / "README").write_text("not executable: skipped\n")
    for hook in ("10-mark", "20-later"):
        (hooks / hook).chmod(0o755)
    image = images("hooks.cpio.gz", "--overlay", f"{hooks}:/etc/rvforge/first-boot.d")
    result = cli("run", str(image), "--kernel", str(kernel), "--", "sh", "-c",
                 "cat /run/hook-20; ls /etc/rvforge/first-boot.d")
    assert (result.returncode, result.stdout) == (0, "ran\n20-later\nREADME\n"), result.stderr


@network
def test_an_init_that_exits_is_a_kernel_panic_reported_with_exit_4(
        images: Callable[..., Path], kernel: Path, tmp_path: Path) -> None:
    init = tmp_path / "init"
    # the pause lets the console's tty write the line out: at the panic the kernel prints
    # its own lines and drops what a tty still held (seen once on a loaded machine)
    init.write_text("#!/bin/sh\necho bye from a broken init\nsleep 1\nexit 3\n")
    init.chmod(0o755)
    image = images("broken.cpio.gz", "--no-init", "--overlay", f"{init}:/init")
    result = cli("boot", str(image), "--kernel", str(kernel), "--timeout", "120")
    assert result.returncode == 4, result.stderr
    assert "boot failed: kernel panic: Attempted to kill init!" in result.stderr
    assert "| bye from a broken init" in result.stderr


@network
def test_vector_binary_audit_then_sigill_diagnosis_then_runs_on_a_vector_machine(
        images: Callable[..., Path], kernel: Path, riscv_cc: RiscvCC,
        alpine_tarball: Path, tmp_path: Path) -> None:
    vsum = riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")
    audited = cli("build", "--provider", "local", "--source", str(alpine_tarball),
                  "--machine", "qemu-virt", "--overlay", f"{vsum}:/usr/bin/vsum",
                  "-o", str(tmp_path / "audited.cpio.gz"))
    assert audited.returncode == 3, audited.stderr
    assert not (tmp_path / "audited.cpio.gz").exists()

    image = images("vector.cpio.gz", "--no-audit", "--overlay", f"{vsum}:/usr/bin/vsum")
    failed = cli("run", str(image), "--kernel", str(kernel), "--machine", "qemu-virt",
                 "--", "vsum")
    assert failed.returncode == 132, failed.stderr
    diagnosis = [line for line in failed.stderr.splitlines()
                 if line.startswith("rvforge: illegal instruction")]
    assert len(diagnosis) == 1, failed.stderr
    assert "in /usr/bin/vsum (process vsum[" in diagnosis[0]
    assert "is vsetvli, from the vector extension V 1.0" in diagnosis[0]
    assert "--machine qemu-virt-v" in diagnosis[0] and "-march=rv64gc" in diagnosis[0]

    works = cli("run", str(image), "--kernel", str(kernel), "--machine", "qemu-virt-v",
                "--", "vsum")
    assert (works.returncode, works.stdout) == (0, "vl=4\n"), works.stderr


@network
def test_an_ext4_image_boots_from_the_virtio_disk_with_a_share_and_network(
        images: Callable[..., Path], kernel: Path, tmp_path: Path) -> None:
    """The boot stub loads the share's and the network's modules too."""
    image = images("alpine.ext4")
    before = image.read_bytes()
    (tmp_path / "in").write_text("shared\n")
    result = cli("run", str(image), "--kernel", str(kernel), "--share", f"{tmp_path}:/mnt/h",
                 "--net", "--", "sh", "-c",
                 "cat /etc/alpine-release; grep ' / ' /proc/mounts; touch /written; "
                 "cat /mnt/h/in; echo out > /mnt/h/out; ip route | grep default")
    assert result.returncode == 0, result.stderr
    # the disk read-only under a RAM overlay: what the guest writes is in its memory
    assert result.stdout.startswith("3.20.3\noverlay / overlay rw,")
    assert "lowerdir=/lower,upperdir=/upper/data" in result.stdout
    assert "shared\ndefault via 10.0.2.2 dev eth0" in result.stdout
    assert (tmp_path / "out").read_text() == "out\n"
    assert image.read_bytes() == before  # a read-only disk: the image is never written


def test_qemu_user_runs_one_program_of_the_image(alpine: Path) -> None:
    result = cli("run", "--launcher", "qemu-user", str(alpine), "--",
                 "/bin/busybox", "uname", "-m")
    assert (result.returncode, result.stdout) == (0, "riscv64\n"), result.stderr
    bare = cli("run", "--launcher", "qemu-user", str(alpine), "--", "sh", "-c", "exit 5")
    assert bare.returncode == 5, bare.stderr


def test_qemu_user_runs_with_the_profiles_cpu(images: Callable[..., Path],
                                              riscv_cc: RiscvCC) -> None:
    vsum = riscv_cc.program("vsetvli", "vsum", "-static", "-O2", "-march=rv64gcv")
    image = images("vector.cpio.gz", "--no-audit", "--overlay", f"{vsum}:/usr/bin/vsum")
    vector = cli("run", "--launcher", "qemu-user", "--machine", "qemu-virt-v", str(image),
                 "--", "vsum")
    assert (vector.returncode, vector.stdout, vector.stderr) == (0, "vl=4\n", "")
    plain = cli("run", "--launcher", "qemu-user", "--machine", "qemu-virt", str(image),
                "--", "vsum")
    assert plain.returncode == 132, plain.stderr
    assert "rvforge: illegal instruction in vsum" in plain.stderr


QEMU_VIRT_ONLY = [
    ["--share", "/tmp:/mnt"], ["--net"], ["--forward", "8080:80"], ["--append", "quiet"],
    ["--qemu-arg=-foo"], ["--gdb"], ["--gdb-port", "4321"], ["--halted"], ["--console"],
    ["--qemu", "/usr/bin/qemu-system-riscv64"], ["--kernel", "auto"], ["--memory", "512"],
    ["--cpus", "2"], ["--console-log", "/tmp/never-written.log"],
]


def test_qemu_user_refuses_the_issues_qemu_only_flags(alpine: Path) -> None:
    """The command that used to print ``hi`` and exit 0, ignoring four flags."""
    command = ["--", "/bin/echo", "hi"]
    plain = cli("run", "--launcher", "qemu-user", str(alpine), *command)
    assert (plain.returncode, plain.stdout) == (0, "hi\n"), plain.stderr
    result = cli("run", "--launcher", "qemu-user", "--share", "/tmp:/mnt", "--gdb", "--net",
                 "--qemu-arg=-foo", str(alpine), *command)
    assert_one_line_error(result, 2, "launcher 'qemu-user' does not take --share "
                                     "(it takes: --timeout)")
    assert result.stdout == ""


@pytest.mark.parametrize("flags", QEMU_VIRT_ONLY, ids=lambda flags: flags[0])
def test_each_qemu_virt_option_is_exit_2_naming_it_and_qemu_user(
        alpine: Path, flags: list[str]) -> None:
    ran = CliRunner().invoke(app, ["run", "--launcher", "qemu-user", *flags, str(alpine),
                                   "--", "/bin/echo", "hi"])
    result = subprocess.CompletedProcess(flags, ran.exit_code, ran.stdout, ran.stderr)
    flag = flags[0].partition("=")[0]
    assert_one_line_error(result, 2, f"launcher 'qemu-user' does not take {flag} ")
    assert "hi" not in ran.stdout


def test_missing_qemu_exits_125_with_the_apt_line(alpine: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = cli("boot", str(alpine), "--kernel", str(alpine), env={"PATH": str(empty)})
    assert result.returncode == 125, result.stderr
    assert "qemu-system-riscv64 is not installed" in result.stderr
    assert "apt-get install --no-install-recommends qemu-system-misc" in result.stderr


@network
def test_pytest_plugin_boots_once_and_runs_commands(alpine: Path, kernel: Path,
                                                    tmp_path: Path) -> None:
    (tmp_path / "test_in_guest.py").write_text(textwrap.dedent("""
        def test_uname(rvforge_guest):
            result = rvforge_guest.run(["uname", "-m"])
            assert (result.status, result.stdout) == (0, b"riscv64\\n")

        def test_status_and_stderr(rvforge_guest):
            result = rvforge_guest.run("echo oops >&2; exit 3")
            assert (result.status, result.stderr) == (3, b"oops\\n")

        def test_large_output_arrives_whole(rvforge_guest):
            result = rvforge_guest.run("head -c 3000000 /dev/zero | tr '\\\\0' x; echo e >&2")
            assert (result.status, result.stdout, result.stderr) == (0, b"x" * 3000000, b"e\\n")

        def test_same_guest(rvforge_guest):
            rvforge_guest.run("echo kept > /tmp/state")
            assert rvforge_guest.run(["cat", "/tmp/state"]).stdout == b"kept\\n"
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), "--rvforge-image",
         str(alpine), "--rvforge-kernel", str(kernel), str(tmp_path / "test_in_guest.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert not qemu_running_with(alpine)


@network
@pytest.mark.slow
def test_a_debian_minbase_disk_image_runs_commands_with_dash(kernel: Path, tmp_path: Path
                                                             ) -> None:
    """No busybox, no base64, no poweroff: the init protocol needs only POSIX sh (dash),
    mount and the sysrq trigger; the disk boots through the module-loading stub, which
    also loads the share's 9p modules."""
    image = tmp_path / "debian.ext4"
    built = cli("build", "--provider", "debootstrap", "--configure", "none", "-o", str(image),
                timeout=900)
    assert built.returncode == 0, built.stderr
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "in").write_text("from the host\n")
    # an image of this test alone: saving its snapshot would be work for nobody
    result = cli("run", str(image), "--kernel", str(kernel), "--no-snapshot", "--share",
                 f"{tmp_path / 'shared'}:/mnt/shared", "--", "sh", "-c",
                 'readlink -f /bin/sh; command -v busybox || echo no-busybox; '
                 'cat /mnt/shared/in; echo "$@"; exit 9', "sh", "a  b")
    assert result.returncode == 9, result.stderr
    assert result.stdout == "/usr/bin/dash\nno-busybox\nfrom the host\na  b\n"
    assert not qemu_running_with(image)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("flags", "message"), [
    (["--share", "/nonexistent/rvforge-dir:/mnt/x"],
     "--share /nonexistent/rvforge-dir:/mnt/x: the host directory /nonexistent/rvforge-dir "
     "does not exist"),
    (["--share", "{tmp}:mnt/x"], "must be an absolute path"),
    (["--share", "{tmp}:/usr"], "/usr is a system directory of the guest"),
    (["--share", "{tmp}:/proc/x"], "/proc/x is a system directory of the guest"),
    (["--share", "{tmp}:/mnt/a b"], "may hold only letters"),
    (["--share", "{tmp}"], "expected HOST:GUEST[:ro]"),
    (["--forward", "80"], "--forward 80: expected HOSTPORT:GUESTPORT"),
    (["--forward", "8080:70000"], "expected HOSTPORT:GUESTPORT"),
    (["--halted"], "--halted waits for a debugger: give --gdb too"),
    (["--append", "'unclosed"], "--append"),
])
def test_bad_share_forward_and_debug_flags_exit_2_with_one_line(
        alpine: Path, tmp_path: Path, flags: list[str], message: str) -> None:
    args = [flag.replace("{tmp}", str(tmp_path)) for flag in flags]
    ran = CliRunner().invoke(app, ["run", str(alpine), "--kernel", str(alpine), *args, "--",
                                   "true"])  # in-process: no interpreter start per case
    result = subprocess.CompletedProcess(args, ran.exit_code, ran.stdout, ran.stderr)
    assert_one_line_error(result, 2, message)
    assert not qemu_running_with(alpine)


@network
def test_shares_network_and_forwards_in_one_pytest_plugin_guest(
        alpine: Path, kernel: Path, tmp_path: Path) -> None:
    """One boot: a read-write and a read-only share, a file fetched over --net from a
    server on the host's loopback, a guest server reached through a forward."""
    work, docs = tmp_path / "work", tmp_path / "docs"
    work.mkdir()
    docs.mkdir()
    (work / "from-host.txt").write_text("written on the host\n")
    (docs / "index.html").write_text("served by the guest\n")
    port = free_port()
    (tmp_path / "test_devloop_in_guest.py").write_text(textwrap.dedent(f"""
        import http.server, socket, threading
        from pathlib import Path

        def test_the_share_is_read_and_written(rvforge_guest):
            result = rvforge_guest.run("cat /mnt/work/from-host.txt; "
                                       "echo from the guest > /mnt/work/from-guest.txt")
            assert (result.status, result.stdout) == (0, b"written on the host\\n")
            assert Path({str(work)!r}, "from-guest.txt").read_text() == "from the guest\\n"

        def test_the_read_only_share_refuses_writes(rvforge_guest):
            result = rvforge_guest.run("cat /srv/www/index.html; touch /srv/www/new")
            assert result.status != 0
            assert result.stdout == b"served by the guest\\n"
            assert b"Read-only file system" in result.stderr
            assert not Path({str(docs)!r}, "new").exists()

        def test_a_loopback_server_is_reached_from_the_guest(rvforge_guest):
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = b"hello from the host " + self.path.encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                result = rvforge_guest.run(
                    f"wget -q -O - http://10.0.2.2:{{server.server_port}}/x; "
                    "echo; grep nameserver /etc/resolv.conf", timeout=120)
            finally:
                server.shutdown()
            assert result.status == 0, result.stderr
            assert result.stdout == b"hello from the host /x\\nnameserver 10.0.2.3\\n"

        def test_a_guest_server_is_reached_through_the_forward(rvforge_guest):
            started = rvforge_guest.run(
                "nc -l -p 8080 < /srv/www/index.html > /dev/null 2>&1 & sleep 1")
            assert started.status == 0, started.stderr
            received = b""
            with socket.create_connection(("127.0.0.1", {port}), timeout=60) as conn:
                while not received.endswith(b"\\n") and (data := conn.recv(4096)):
                    received += data
            assert received == b"served by the guest\\n"
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "rvforge_qemu.pytest_plugin", "--rootdir", str(tmp_path), "--rvforge-image",
         str(alpine), "--rvforge-kernel", str(kernel), "--rvforge-share", f"{work}:/mnt/work",
         "--rvforge-share", f"{docs}:/srv/www:ro", "--rvforge-forward", f"{port}:8080",
         str(tmp_path / "test_devloop_in_guest.py")],
        check=False, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert not qemu_running_with(alpine)


@network
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="unshare -n needs root")
def test_boots_without_network_use_the_cached_kernel(alpine: Path, kernel: Path,
                                                     tmp_path: Path) -> None:
    def no_network(*args: str, cache: Path | None = None
                   ) -> subprocess.CompletedProcess[str]:
        # a short fetch deadline: the failing lookup need not retry for long
        env = {**os.environ, "RVFORGE_FETCH_DEADLINE": "5",
               **({"XDG_CACHE_HOME": str(cache)} if cache else {})}
        return subprocess.run(["unshare", "-n", RVFORGE, *args], check=False,
                              capture_output=True, text=True, env=env, timeout=600)

    offline = no_network("run", str(alpine), "--offline", "--", "cat", "/etc/alpine-release")
    assert (offline.returncode, offline.stdout) == (0, "3.20.3\n"), offline.stderr

    # a cache holding only the kernel: the lookup fails, the cached kernel boots anyway
    private = tmp_path / "cache"
    (private / "rvforge" / "debian" / "kernels").mkdir(parents=True)
    unpacked = kernel.parent.parent
    (private / "rvforge" / "debian" / "kernels" / unpacked.name).symlink_to(unpacked)
    # a cold boot in a throwaway cache: saving its snapshot would be work for nobody
    fallback = no_network("run", str(alpine), "--no-snapshot", "--", "true", cache=private)
    assert fallback.returncode == 0, fallback.stderr
    assert "kernel lookup failed; booting the newest cached kernel" in fallback.stderr

    empty = no_network("boot", str(alpine), "--offline", cache=tmp_path / "empty")
    assert empty.returncode == 2, empty.stderr
    assert "--offline: no Debian kernel in the cache" in empty.stderr
    assert "run `rvforge boot IMAGE` once with the network" in empty.stderr
    assert not qemu_running_with(alpine)


@network
def test_interactive_console_has_job_control_ctrl_c_and_the_terminal_size(
        alpine: Path, kernel: Path, tmp_path: Path) -> None:
    pty = Pty(33, 101)
    settings = termios.tcgetattr(pty.slave)
    process = subprocess.Popen(
        # --no-snapshot: the console from power-on (a restored one: test_warm_console.py)
        [RVFORGE, "boot", str(alpine), "--kernel", str(kernel), "--interactive",
         "--no-snapshot", "--console-log", str(tmp_path / "console.log")],
        stdin=pty.slave, stdout=pty.slave, stderr=pty.slave)
    try:
        pty.expect(rb"RVFORGE-READY")
        pty.send(b"stty size; echo S-$((1+1))\r")
        assert pty.expect(rb"(\d+ \d+)\s+S-2").group(1) == b"33 101"
        # the guest says when the foreground job runs; Ctrl-C kills it (and its sleep)
        pty.send(b"sh -c 'echo R-$((5+5)); sleep 100; echo not-interrupted'\r")
        pty.expect(rb"R-10")
        pty.send(b"\x03")
        pty.send(b"echo C-$((1+2))\r")
        pty.expect(rb"C-3")
        assert b"not-interrupted" not in pty.before
        pty.send(b"sh -c 'echo T-$((2+3)); exec sleep 200'\r")
        pty.expect(rb"T-5")
        pty.send(b"\x1a")  # Ctrl-Z: only a shell with job control stops the job
        pty.expect(rb"Stopped")
        pty.send(b"jobs; kill -9 %1; echo Z-$((3*3))\r")
        pty.expect(rb"Z-9")
        pty.send(b"exit\r")
        # ash may not have reaped the killed job yet: then a second exit leaves anyway
        if pty.expect(rb"You have stopped jobs|reboot: Power down").group(0) != \
                b"reboot: Power down":
            pty.send(b"exit\r")
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    pty.expect(rb"booted .* on qemu-virt in")
    assert termios.tcgetattr(pty.slave) == settings  # the terminal is restored
    assert "reboot: Power down" in (tmp_path / "console.log").read_text()
    assert not qemu_running_with(alpine)


@network
def test_append_qemu_args_and_a_halted_gdbstub_that_a_debugger_continues(
        alpine: Path, kernel: Path, tmp_path: Path) -> None:
    """One boot: ``--halted`` keeps the CPUs stopped (the console stays empty) until a
    gdb remote-protocol client says ``continue``; ``--append`` reaches the kernel command
    line and ``--qemu-arg`` QEMU's."""
    port, log = free_port(), tmp_path / "console.log"
    process = subprocess.Popen(
        [RVFORGE, "run", str(alpine), "--kernel", str(kernel), "--console-log", str(log),
         "--gdb-port", str(port), "--halted", "--append", "rvforge.test=42 quiet",
         "--qemu-arg=-rtc", "--qemu-arg=base=2031-05-06", "--", "sh", "-c",
         "cat /proc/cmdline; date -u +%Y"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                gdb = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        with gdb:
            time.sleep(3)
            assert log.stat().st_size == 0  # halted: not even the firmware has run
            gdb.sendall(b"$c#63")  # the remote protocol's 'continue'
            assert gdb.recv(1) == b"+"
            stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    cmdline, year = stdout.splitlines()
    assert cmdline.endswith(" rvforge.test=42 quiet") and "console=ttyS0" in cmdline
    assert year == "2031"


def test_a_kernel_that_never_prints_is_restarted_then_reported(
        alpine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real QEMU start that stalls as QEMU 7.2 now and then does: OpenSBI hands over to
    # a "kernel" that spins without printing
    source = tmp_path / "spin.s"
    source.write_text(".globl _start\n_start:\n    j _start\n")
    obj, spin = tmp_path / "spin.o", tmp_path / "spin.bin"
    subprocess.run(["riscv64-linux-gnu-as", "-o", str(obj), str(source)], check=True)
    subprocess.run(["riscv64-linux-gnu-objcopy", "-O", "binary", str(obj), str(spin)],
                   check=True)
    from rvforge_qemu import starting

    monkeypatch.setattr(starting, "KERNEL_START_SECONDS", 3.0)
    # two 3 s waits and their restarts fit 15 s with room; the last attempt waits it out
    result = CliRunner().invoke(app, ["--log-format", "json", "boot", str(alpine),
                                      "--kernel", str(spin), "--timeout", "15"])
    assert result.exit_code == 4, result.output
    restarts = [json.loads(line) for line in result.output.splitlines()
                if "restarting QEMU" in line]
    assert [e["attempt"] for e in restarts] == [1, 2], result.output
    assert "timed out waiting for the ready marker" in result.output
    assert qemu_running_with(spin) == []
