"""The run side around a restored guest, on real QEMU (7.2, and 10.x when
``RVFORGE_TEST_QEMU10`` names it): ``boot --interactive`` restores (a pty drives the
console), the network and port forwards of a restored guest (a real server on the host's
loopback, a real connection into the guest), and ``rvforge exec`` streaming its output.

Each test has its own cache, so which start boots cold and which restores is known; the
kernel is passed by path (no lookup)."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pseudo_terminal import Pty
from qemu_processes import qemu_running_with

pytestmark = [pytest.mark.qemu, pytest.mark.network]

RVFORGE = str(Path(sys.executable).with_name("rvforge"))
QEMUS = ["system", *(["qemu10"] if os.environ.get("RVFORGE_TEST_QEMU10") else [])]


@pytest.fixture(scope="module")
def image(alpine_initramfs: Path) -> Path:
    return alpine_initramfs


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path, kernel: Path
           ) -> tuple[list[str], dict[str, str]]:
    """The launch flags (kernel, QEMU) and environment (a cache and runtime directory of
    this test's own) of an rvforge start, on the QEMU the test is parametrized with."""
    which = getattr(request, "param", "system")
    qemu = ["--qemu", os.environ["RVFORGE_TEST_QEMU10"]] if which == "qemu10" else []
    (tmp_path / "run").mkdir(mode=0o700)
    return ([*qemu, "--kernel", str(kernel)],
            {**os.environ, "RVFORGE_CACHE_DIR": str(tmp_path / "cache"),
             "XDG_RUNTIME_DIR": str(tmp_path / "run")})


@pytest.fixture
def console(image: Path, launch: tuple[list[str], dict[str, str]]
            ) -> Iterator[Callable[..., tuple[Pty, subprocess.Popen[bytes]]]]:
    """``console(*flags)``: ``rvforge boot --interactive`` on a pty of 33 rows and 101
    columns; every console started is gone (killed if need be) at the end."""
    started: list[tuple[Pty, subprocess.Popen[bytes]]] = []

    def start(*flags: str) -> tuple[Pty, subprocess.Popen[bytes]]:
        pty = Pty(33, 101)
        process = subprocess.Popen(
            [RVFORGE, "boot", str(image), "--interactive", *launch[0], *flags],
            stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, env=launch[1])
        started.append((pty, process))
        return pty, process

    yield start
    for pty, process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        pty.close()


PROMPT = rb"/ # "  # busybox ash then asks the cursor position (ESC [6n)
PROBE = b"stty size; cat /proc/sys/kernel/random/uuid; date +%s; cat /mnt/s/f; echo P-$((1+1))\r"
PROBE_ANSWER = rb"(\d+ \d+)\r\n([0-9a-f-]{36})\r\n(\d+)\r\n(\w+)\r\nP-2"


@pytest.mark.parametrize("launch", QEMUS, indirect=True)
def test_an_interactive_console_restores_and_lands_at_a_fresh_prompt(
        console: Callable[..., tuple[Pty, subprocess.Popen[bytes]]], image: Path,
        tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(f"{name}\n")

    # the first console boots (the console shown from power-on), saves, then the shell
    pty, process = console("--share", f"{tmp_path / 'one'}:/mnt/s")
    pty.expect(rb"RVFORGE-READY")
    pty.expect(rb"saved the guest's ready state")
    pty.expect(PROMPT)
    pty.send(PROBE)
    size, cold_uuid, _, shared = pty.expect(PROBE_ANSWER).groups()
    assert (size, shared) == (b"33 101", b"one")
    pty.send(b"exit\r")
    pty.expect(rb"reboot: Power down")
    assert process.wait(timeout=120) == 0
    pty.expect(rb"booted .* on qemu-virt in")

    # the next one restores: no boot shown, a prompt without typing, fresh and sized,
    # the share pointing elsewhere, job control and timers working
    pty, process = console("--share", f"{tmp_path / 'two'}:/mnt/s")
    pty.expect(rb"restored the guest from its snapshot")
    pty.expect(PROMPT, timeout=120)
    assert b"RVFORGE-READY" not in pty.before
    pty.send(PROBE)
    size, uuid, clock, shared = pty.expect(PROBE_ANSWER).groups()
    assert (size, shared) == (b"33 101", b"two")
    assert uuid != cold_uuid
    assert abs(int(clock) - time.time()) < 120  # the host's clock, not the save's
    pty.send(b"sh -c 'echo R-$((5+5)); sleep 100; echo not-interrupted'\r")
    pty.expect(rb"R-10")
    pty.send(b"\x03")
    pty.send(b"sleep 1; echo C-$((1+2))\r")
    pty.expect(rb"C-3")
    assert b"not-interrupted" not in pty.before
    pty.send(b"exit\r")
    pty.expect(rb"reboot: Power down")
    assert process.wait(timeout=120) == 0
    pty.expect(rb"booted .* on qemu-virt in")

    # Ctrl-] leaves a restored console at once, and no QEMU is left
    pty, process = console("--share", f"{tmp_path / 'one'}:/mnt/s")
    pty.expect(PROMPT, timeout=120)
    pty.send(b"\x1d")
    assert process.wait(timeout=60) == 0
    assert not qemu_running_with(image)


class HostPage(http.server.BaseHTTPRequestHandler):
    """A page on the host's loopback, naming the path asked for."""

    def do_GET(self) -> None:
        body = f"host-page {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_server() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 (the guest's 10.0.2.2); yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def talk_through(port: int, deadline: float) -> bytes:
    """Send a line to the guest's server through the forwarded ``port`` (again until the
    guest listens) and return what it answered."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"hello-host\n")
                sock.shutdown(socket.SHUT_WR)
                answer = b""
                while data := sock.recv(4096):
                    answer += data
            if answer:
                return answer
        except OSError:
            pass
        time.sleep(0.3)
    return b""


GUEST_NET = ("wget -qO- http://10.0.2.2:{host}/{run}; cat /sys/class/net/eth0/address; "
             "uuid=$(cat /proc/sys/kernel/random/uuid); echo $uuid; "
             "echo from-guest-$uuid | timeout 120 nc -l -p 8080")


@pytest.mark.parametrize("launch", QEMUS, indirect=True)
def test_a_restored_guest_reaches_the_host_and_takes_its_own_forwards(
        image: Path, launch: tuple[list[str], dict[str, str]], host_server: int) -> None:
    seen = []
    for run in ("cold", "warm1", "warm2"):  # another host port each run
        port = free_port()
        process = subprocess.Popen(
            [RVFORGE, "-v", "run", str(image), *launch[0], "--net", "--forward",
             f"{port}:8080", "--", "sh", "-c", GUEST_NET.format(host=host_server, run=run)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=launch[1])
        answer = talk_through(port, time.monotonic() + 300)
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
        page, mac, uuid, received = stdout.decode().split("\n")[:4]
        assert page == f"host-page /{run}"  # the guest reached the host's loopback
        assert received == "hello-host"  # and the host the guest, through the forward
        assert answer == f"from-guest-{uuid}\n".encode()
        assert ("restored the guest from its snapshot" in stderr.decode()) == (run != "cold")
        seen.append((mac, uuid))
    assert len({mac for mac, _ in seen}) == 1  # siblings share the MAC address
    assert len({uuid for _, uuid in seen}) == 3


def test_exec_prints_the_output_as_it_comes(
        image: Path, launch: tuple[list[str], dict[str, str]]) -> None:
    up = subprocess.run([RVFORGE, "up", str(image), *launch[0], "--name", "stream"],
                        capture_output=True, text=True, check=False, env=launch[1])
    assert up.returncode == 0, up.stderr
    try:
        process = subprocess.Popen(
            [RVFORGE, "exec", "stream", "--", "sh", "-c",
             "echo first; echo err-first >&2; sleep 8; echo second; exit 3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=launch[1])
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == b"first\n"
        first = time.monotonic()
        assert process.stderr.readline() == b"err-first\n"
        assert process.stdout.read() == b"second\n"
        # the first lines came before the command's sleep, not with the rest at its end
        assert time.monotonic() - first > 5
        assert process.wait(timeout=60) == 3
    finally:
        down = subprocess.run([RVFORGE, "down", "stream"], capture_output=True, text=True,
                              check=False, env=launch[1])
    assert down.returncode == 0, down.stderr
