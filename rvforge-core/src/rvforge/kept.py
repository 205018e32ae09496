"""Guests that keep running: ``rvforge up`` / ``exec`` / ``ps`` / ``down``.

``up`` starts a *keeper*, a background rvforge process (``python -m rvforge.kept``) that
opens a launcher session (:meth:`rvforge.Launcher.session`, the same one the pytest plugin
holds: restored from its snapshot when the launcher has one) and serves requests on a Unix
socket; ``up`` returns once the guest is ready. Nothing here knows which launcher runs the
guest: any launcher that :attr:`~rvforge.Launcher.supports_session` can be kept.

Where: the runtime directory :func:`runtime_dir` (``$XDG_RUNTIME_DIR/rvforge``, else
``/tmp/rvforge-<uid>``), which must be the user's own with mode 0700: a directory another
user could enter is refused (exit 2), and the keeper also refuses a connection from
another uid (``SO_PEERCRED``). Per guest: ``NAME.json`` (the record ``ps`` shows),
``NAME.sock`` and ``NAME.log`` (the keeper's log).

A keeper stops its guest and exits on ``down``, after :data:`DEFAULT_IDLE_SECONDS` without a
request (``up --idle-timeout``), or on SIGTERM/SIGHUP. A keeper that died (killed, the
machine rebooted) leaves a record whose process is gone: the next ``ps``/``exec``/``down``
notices and removes it; its guest died with it (the launcher ties it to the keeper).

The socket protocol: the client sends one JSON line (``{"op": "exec", "argv": [...],
"timeout": N}``, ``{"op": "down"}`` or ``{"op": "ping"}``) and reads one JSON line back
(``{"status", "stdout", "stderr" (base64), "reason", "diagnosis"}`` for ``exec``). Before
that answer, ``exec`` streams the command's output as it comes, one line per chunk
(``{"out": base64}`` or ``{"err": base64}``), when the launcher's session can give it
(its ``run`` takes ``stdout=``/``stderr=`` callbacks); the answer's ``stdout``/``stderr``
then hold only what was not streamed.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rvforge.errors import BootFailedError, RvforgeError, UsageError
from rvforge.processes import is_running

DEFAULT_IDLE_SECONDS = 1800.0
"""A kept guest with no request for this long is stopped (30 minutes)."""
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_REQUEST = 16 << 20
READY_LINE = "READY"
DOWN_SECONDS = 30.0


@dataclass
class KeptGuest:
    """What ``ps`` shows of a kept guest (its ``NAME.json``)."""

    name: str
    image: str
    machine: str
    launcher: str
    pid: int
    started: float
    shares: list[str] = field(default_factory=list)
    forwards: list[str] = field(default_factory=list)
    idle_timeout: float = DEFAULT_IDLE_SECONDS


def runtime_dir(*, create: bool = True) -> Path:
    """The user's runtime directory for kept guests, checked (see the module docstring).

    :raises UsageError: it is not a directory the user alone owns and can enter.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "rvforge" if base else Path(f"/tmp/rvforge-{os.getuid()}")
    if create:
        # another user's directory (EACCES) is refused below, with its owner named
        with contextlib.suppress(FileExistsError, PermissionError):
            path.mkdir(mode=0o700, parents=False)
    try:
        info = path.lstat()
    except FileNotFoundError:
        if create:
            raise UsageError(f"{path}: cannot create it; set XDG_RUNTIME_DIR to a directory "
                             "of your own") from None
        return path
    except PermissionError:
        raise UsageError(f"{path}: not reachable by this user (uid {os.getuid()}); kept "
                         "guests are reachable by their owner only") from None
    check_private(path, info)
    return path


def check_private(path: Path, info: os.stat_result) -> None:
    """Refuse ``path`` unless it is a real directory owned by this user with no access for
    group or others."""
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path}: not a directory; remove it (rvforge keeps guests' "
                         "sockets there)")
    if info.st_uid != os.getuid():
        raise UsageError(f"{path}: owned by uid {info.st_uid}, not by you (uid "
                         f"{os.getuid()}); set XDG_RUNTIME_DIR to a directory of your own")
    if info.st_mode & 0o077:
        raise UsageError(f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets other users "
                         f"in; run `chmod 700 {path}`")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' and '-' "
                         "(at most 64, starting with a letter or digit)")
    return name


def default_name(image: Path) -> str:
    """``alpine.cpio.gz`` → ``alpine``."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", image.name.split(".")[0]) or "guest"
    return stem if NAME_RE.fullmatch(stem) else "guest"


def records(directory: Path) -> list[KeptGuest]:
    """The live kept guests; records of dead keepers are removed."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = KeptGuest(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if is_running(record.pid) and (directory / f"{record.name}.sock").exists():
            found.append(record)
        else:
            remove_record(directory, record.name)
    return found


def remove_record(directory: Path, name: str) -> None:
    for suffix in (".json", ".sock"):
        (directory / f"{name}{suffix}").unlink(missing_ok=True)


def find(directory: Path, name: str | None) -> KeptGuest:
    """The running guest ``name`` (or the only one, when ``name`` is ``None``).

    :raises UsageError: no such guest, naming the running ones.
    """
    running = records(directory)
    names = ", ".join(r.name for r in running) or "none"
    if name is None:
        if len(running) == 1:
            return running[0]
        raise UsageError(f"which guest? running: {names}; give its name "
                         "(rvforge exec NAME -- CMD)" if running else
                         "no guest is running; start one with rvforge up IMAGE")
    for record in running:
        if record.name == name:
            return record
    raise UsageError(f"no running guest named {name!r}; running: {names}")


def request(directory: Path, name: str, message: Mapping[str, Any],
            timeout: float | None = None,
            output: Callable[[str, bytes], None] | None = None) -> dict[str, Any]:
    """Send ``message`` to the keeper of ``name`` and return its answer; streamed output
    (``exec``) goes to ``output(stream, data)`` (``stream``: ``out`` or ``err``) as it
    comes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(directory / f"{name}.sock"))
            sock.sendall(json.dumps(message).encode() + b"\n")
            reader = _LineReader(sock)
            while _streamed(data := reader.line(), output):
                pass
        except OSError as error:
            raise BootFailedError(f"guest {name!r} did not answer ({error}); "
                                  f"its log: {directory / (name + '.log')}") from None
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise BootFailedError(f"guest {name!r} answered garbage; its log: "
                              f"{directory / (name + '.log')}")
    return answer


def _streamed(line: bytes, output: Callable[[str, bytes], None] | None) -> bool:
    """Whether ``line`` is a chunk of streamed output (then given to ``output``), not the
    answer."""
    try:
        chunk = json.loads(line)
    except ValueError:
        return False
    if not (isinstance(chunk, dict) and len(chunk) == 1 and chunk.keys() <= {"out", "err"}):
        return False
    [(stream, text)] = chunk.items()
    try:
        data = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except ValueError:
        return True
    if output is not None:
        output(stream, data)
    return True


def stop(directory: Path, record: KeptGuest) -> None:
    """Stop the guest: ask its keeper, then make sure the keeper's process group is gone."""
    with contextlib.suppress(RvforgeError):
        request(directory, record.name, {"op": "down"}, timeout=DOWN_SECONDS)
    deadline = time.monotonic() + DOWN_SECONDS
    while is_running(record.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_running(record.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
    remove_record(directory, record.name)


def start_keeper(spec: Mapping[str, Any], log: Path, timeout: float) -> None:
    """Start a keeper for ``spec`` and wait until it says its guest is ready.

    :raises BootFailedError: the keeper's one-line reason when the guest did not start.
    """
    with open(log, "ab") as log_file:
        keeper = subprocess.Popen(
            [sys.executable, "-m", "rvforge.kept", json.dumps(spec)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file,
            start_new_session=True)
    assert keeper.stdout is not None
    line = keeper.stdout.readline().decode("utf-8", "replace").strip()
    keeper.stdout.close()
    if line == READY_LINE:
        return
    keeper.wait(timeout)
    reason = line.removeprefix("ERROR ") or f"the keeper exited with status {keeper.returncode}"
    raise BootFailedError(f"{reason} (log: {log})")


def serve(spec: Mapping[str, Any]) -> int:
    """The keeper's main loop (``python -m rvforge.kept SPEC``)."""
    from rvforge.launching import configured_context, prepare_launch
    from rvforge.log import configure_logging

    configure_logging(verbose=0, quiet=False, fmt="text")
    directory = runtime_dir()
    name = spec["name"]
    ready = sys.stdout
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    try:
        config = Path(spec["config"]) if spec.get("config") else None
        with configured_context(config, offline=bool(spec.get("offline"))) as (_, ctx):
            launch = prepare_launch(spec["image"], ctx, machine=spec.get("machine"),
                                    launcher=spec.get("launcher"), values=spec["values"],
                                    command="session")
            with launch.session(ctx) as session, _listener(directory, name) as listener:
                record = KeptGuest(
                    name, str(Path(spec["image"]).resolve()), launch.machine.name,
                    launch.launcher.name, os.getpid(), time.time(),
                    list(spec["values"].get("share") or []),
                    list(spec["values"].get("forward") or []),
                    float(spec.get("idle_timeout") or DEFAULT_IDLE_SECONDS))
                _write_record(directory, record)
                print(READY_LINE, file=ready, flush=True)
                ready.close()
                _loop(listener, session, record)
    except (RvforgeError, OSError) as error:
        with contextlib.suppress(OSError, ValueError):
            print(f"ERROR {error}".splitlines()[0], file=ready, flush=True)
        return 1
    finally:
        remove_record(directory, name)
    return 0


def _loop(listener: socket.socket, session: Any, record: KeptGuest) -> None:
    listener.settimeout(record.idle_timeout)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return  # idle: the session's end powers the guest off
        with conn:
            if not _same_user(conn):
                continue
            try:
                message = json.loads(_read_line(conn))
            except (OSError, ValueError):
                continue
            if not isinstance(message, dict):
                continue
            if message.get("op") == "down":
                _answer(conn, {"stopping": True})
                return
            if message.get("op") == "exec":
                _answer(conn, _execute(session, message, conn))
            else:
                _answer(conn, {"pong": True})


def _execute(session: Any, message: Mapping[str, Any], conn: socket.socket
             ) -> dict[str, Any]:
    argv = message.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return {"status": None, "reason": "bad request"}
    timeout = message.get("timeout")
    streams = _streams(session, conn)
    try:
        result = session.run(argv, timeout=float(timeout) if timeout else None, **streams)
    except RvforgeError as error:
        return {"status": None, "reason": str(error), "stdout": "", "stderr": ""}
    out, err = (b"", b"") if streams else (result.stdout, result.stderr)
    return {"status": result.status, "reason": result.reason,
            "stdout": base64.b64encode(out).decode(),
            "stderr": base64.b64encode(err).decode(),
            "diagnosis": list(result.diagnosis)}


def _streams(session: Any, conn: socket.socket) -> dict[str, Callable[[bytes], None]]:
    """``stdout=``/``stderr=`` callbacks sending the output to the client as it comes, if
    the session's ``run`` takes them (see :class:`rvforge.LaunchSession`)."""
    accepted = inspect.signature(session.run).parameters
    if not {"stdout", "stderr"} <= accepted.keys():
        return {}

    def chunk(stream: str) -> Callable[[bytes], None]:
        # a client gone (Ctrl-C) must not break the command: its output is dropped
        return lambda data: _answer(conn, {stream: base64.b64encode(data).decode()})

    return {"stdout": chunk("out"), "stderr": chunk("err")}


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer runs as this user (``SO_PEERCRED``: pid, uid, gid)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


@contextlib.contextmanager
def _listener(directory: Path, name: str) -> Iterator[socket.socket]:
    path = directory / f"{name}.sock"
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(4)
        yield sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def _write_record(directory: Path, record: KeptGuest) -> None:
    path = directory / f"{record.name}.json"
    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    temp.write_text(json.dumps(asdict(record)) + "\n")
    os.replace(temp, path)


def _answer(conn: socket.socket, answer: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(answer).encode() + b"\n")


class _LineReader:
    """Lines from a socket, one at a time (an answer may follow streamed chunks in the
    same read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
            if len(self.buffer) > MAX_REQUEST:
                raise OSError("message too long")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise OSError("message too long")
    return data


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.argv[1])))
