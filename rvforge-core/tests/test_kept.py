"""Kept guests without a guest: the runtime directory's checks, names, records of dead
keepers, and how ``rvforge exec`` reads its command line (the guests themselves are in
tests/test_snapshot_boot.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rvforge import UsageError, kept
from rvforge.cli.guests import _split
from rvforge.cli.quickexec import quick_exec


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path / "rvforge"


def test_the_runtime_dir_is_made_private_and_checked(runtime: Path) -> None:
    assert kept.runtime_dir() == runtime
    assert runtime.stat().st_mode & 0o777 == 0o700
    runtime.chmod(0o750)
    with pytest.raises(UsageError, match=r"mode 0750 lets other users in; run `chmod 700 "):
        kept.runtime_dir()
    runtime.rmdir()
    runtime.write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        kept.runtime_dir()


def test_a_record_whose_keeper_is_gone_is_removed(runtime: Path) -> None:
    directory = kept.runtime_dir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, pid in (("dead", dead.pid), ("alive", os.getpid())):
        record = kept.KeptGuest(name, "/img", "qemu-virt", "qemu-virt", pid, 0.0)
        (directory / f"{name}.json").write_text(json.dumps(record.__dict__))
        (directory / f"{name}.sock").write_text("")
    assert [r.name for r in kept.records(directory)] == ["alive"]
    assert not (directory / "dead.json").exists() and not (directory / "dead.sock").exists()
    with pytest.raises(UsageError, match="^no running guest named 'dead'; running: alive$"):
        kept.find(directory, "dead")
    assert kept.find(directory, None).name == "alive"


@pytest.mark.parametrize(("name", "ok"), [("dev", True), ("a.b_c-1", True), ("-x", False),
                                          ("a/b", False), ("", False), ("x" * 65, False)])
def test_guest_names(name: str, ok: bool) -> None:
    if ok:
        assert kept.check_name(name) == name
    else:
        with pytest.raises(UsageError, match="--name"):
            kept.check_name(name)


def test_default_name_is_the_image_name_up_to_its_first_dot() -> None:
    assert kept.default_name(Path("/x/alpine.cpio.gz")) == "alpine"
    assert kept.default_name(Path("my image.ext4")) == "my-image"


def test_exec_words_before_the_double_dash_name_the_guest() -> None:
    assert _split(["dev", "ls", "-l"], after=2) == ("dev", ["ls", "-l"])
    assert _split(["ls", "-l"], after=2) == (None, ["ls", "-l"])
    with pytest.raises(UsageError, match="one guest name before --"):
        _split(["a", "b", "ls"], after=1)
    with pytest.raises(UsageError, match="no command"):
        _split(["dev"], after=0)


def test_quick_exec_leaves_what_it_does_not_handle_to_the_full_cli(runtime: Path) -> None:
    assert quick_exec(["--help"]) is None
    assert quick_exec(["dev", "true"]) is None  # no --
    assert quick_exec(["--timeout", "x", "--", "true"]) is None
    assert quick_exec(["--bogus", "--", "true"]) is None
    assert quick_exec(["nosuch", "--", "true"]) == 2  # handled: no such guest


def test_streamed_chunks_come_before_the_answer_and_bad_ones_are_not_output(
        runtime: Path) -> None:
    """A keeper (here a real socket server) streams output lines, then answers; a line
    that is not a well-formed chunk is the answer, a chunk that is not base64 is dropped."""
    import base64
    import socket
    import threading

    path = kept.runtime_dir() / "box.sock"
    lines = [{"out": base64.b64encode(b"first\n").decode()},
             {"err": base64.b64encode(b"oops\n").decode()},
             {"out": "not base64!"},
             {"status": 0, "stdout": "", "stderr": ""}]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)

        def keeper() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"".join(json.dumps(line).encode() + b"\n" for line in lines))

        thread = threading.Thread(target=keeper)
        thread.start()
        seen: list[tuple[str, bytes]] = []
        answer = kept.request(runtime, "box", {"op": "exec", "argv": ["true"]},
                              timeout=10, output=lambda s, d: seen.append((s, d)))
        thread.join()
    assert seen == [("out", b"first\n"), ("err", b"oops\n")]
    assert answer == lines[-1]
