"""A warm ``rvforge run`` restores its guest while rvforge is still starting.

After a run that restored (or saved) its guest, the launcher remembers, under the name of
the command line (:func:`rvforge.prestart.invocation_digest`: its words up to ``--``, the
directory and the environment), the QEMU command line it started and the snapshot it
restored: a *hint* in ``<cache>/qemu/prestart/<name>.json``. The next time the same command
line is typed, rvforge-qemu's ``rvforge_prestart`` starts that QEMU restoring the snapshot
before typer has even parsed the command, and the launcher takes it over
(:func:`rvforge_qemu.warm.try_restore`) if, once everything is worked out, the command line
it would start is exactly the one started; otherwise that QEMU is killed and the run goes
on as if nothing had been started. A restored guest runs no request before it is taken, so
a wrong guess costs only CPU time.

A hint is data from the cache and starts a program, so it is believed only when it looks
like what the launcher writes: a JSON object of the known format, the file and its
directory owned by this user and writable by no one else, QEMU an executable
``qemu-system-riscv64*``, the snapshot a ``state.zst`` of this cache's store, and only the
options a plain warm run has (no shares, network, debugger, chardev or extra arguments;
disks read-only). Launches with anything else are not remembered.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rvforge import Prestart
from rvforge.net.download import write_atomic

from rvforge_qemu.guest import Launched, channel_args, launch
from rvforge_qemu.qmp import incoming_args

FORMAT = 1
HINTS = ("qemu", "prestart")
MAX_HINT_BYTES = 64 << 10
VALUE_OPTIONS = frozenset({"-L", "-machine", "-cpu", "-smp", "-m", "-bios", "-kernel",
                           "-initrd", "-append", "-drive", "-device", "-display"})
FLAG_OPTIONS = frozenset({"-nodefaults", "-no-user-config", "-no-reboot"})
"""The QEMU options of a plain warm run (:func:`rvforge_qemu.prepared.command_line`)."""
DEVICE_WORDS = re.compile(r"chardev|file|path|log|fsdev|netdev", re.IGNORECASE)
"""A ``-device`` naming one of these reaches host files or sockets: not remembered."""
STATE_PATH = re.compile(r"^[0-9a-f]{64}/state\.zst$")


@dataclass
class PrestartedQemu(Prestart):
    """``rvforge_prestart``'s handle for ``rvforge run``: the command line's name (where
    the launcher remembers its launch), and the QEMU started from the hint, if any, with
    the temporary directory of its sockets."""

    invocation: str
    hints: Path
    """The hints' directory."""
    started: tuple[tempfile.TemporaryDirectory[str], Launched] | None = None

    def take(self) -> tuple[tempfile.TemporaryDirectory[str], Launched] | None:
        """The started QEMU and its socket directory, now the caller's."""
        started, self.started = self.started, None
        return started

    def close(self) -> None:
        if (started := self.take()) is not None:
            directory, launched = started
            launched.kill()
            directory.cleanup()

    def remember(self, argv: list[str], state: Path, cache_dir: Path) -> bool:
        """Remember that this command line restored ``state`` with QEMU ``argv`` (the
        launch's, without rvforge's channels); ``False`` (nothing written) when the launch
        is not a plain warm run."""
        if problem_of(argv, state, cache_dir) is not None:
            (self.hints / f"{self.invocation}.json").unlink(missing_ok=True)
            return False
        path = self.hints / f"{self.invocation}.json"
        if read_hint(path, cache_dir) == (argv, state):  # every warm run but the first
            return True
        text = json.dumps({"format": FORMAT, "argv": argv, "state": str(state)})
        self.hints.mkdir(parents=True, exist_ok=True)
        self.hints.chmod(0o700)  # believed only if no one else can write it (read_hint)
        write_atomic(path, text.encode(), within=cache_dir)
        path.chmod(0o600)
        return True


def prestart_run(invocation: str, cache_dir: Path) -> PrestartedQemu:
    """The handle for ``rvforge run`` typed as ``invocation``, with its guest's restore
    started if a believable hint says what the same command line started last time."""
    hints = cache_dir.joinpath(*HINTS)
    handle = PrestartedQemu(invocation, hints)
    hint = read_hint(hints / f"{invocation}.json", cache_dir)
    if hint is None:
        return handle
    argv, state = hint
    directory = tempfile.TemporaryDirectory(prefix="rvforge-vm-")
    socket_dir = Path(directory.name)
    try:
        handle.started = directory, launch(
            [*argv, *channel_args(socket_dir), *qmp_start_args(socket_dir),
             *incoming_args(state)], socket_dir)
    except OSError:
        directory.cleanup()
    return handle


def qmp_start_args(socket_dir: Path) -> list[str]:
    from rvforge_qemu.warm import start_args  # the snapshot machinery: imported on use

    return start_args(socket_dir)


def read_hint(path: Path, cache_dir: Path) -> tuple[list[str], Path] | None:
    """The QEMU command line and snapshot ``path`` holds, or ``None`` when there is no
    hint or it is not believable (see the module)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not _private(info) or not _private(os.stat(path.parent)):
            return None
        data = file.read(MAX_HINT_BYTES + 1)
    try:
        hint = json.loads(data) if len(data) <= MAX_HINT_BYTES else None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(hint, dict) or hint.get("format") != FORMAT:
        return None
    argv, state = hint.get("argv"), hint.get("state")
    if not (isinstance(argv, list) and all(isinstance(w, str) for w in argv)
            and isinstance(state, str)):
        return None
    if problem_of(argv, Path(state), cache_dir) is not None:
        return None
    return argv, Path(state)


def _private(info: os.stat_result) -> bool:
    """Owned by this user, writable by no one else, and a regular file or directory."""
    return (info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)))


def problem_of(argv: list[str], state: Path, cache_dir: Path) -> str | None:
    """Why ``argv`` restoring ``state`` is not a plain warm run to remember and start
    early, or ``None``."""
    if not argv or any("\0" in word or len(word) > 4096 for word in argv) or len(argv) > 256:
        return "not a command line"
    qemu = Path(argv[0])
    if not (qemu.is_absolute() and qemu.name.startswith("qemu-system-riscv64")
            and qemu.is_file() and os.access(qemu, os.X_OK)):
        return f"{argv[0]!r} is not a qemu-system-riscv64"
    snapshots = cache_dir / "qemu" / "snapshots"
    try:
        relative = state.relative_to(snapshots).as_posix()
    except ValueError:
        return f"{state} is not in {snapshots}"
    if not STATE_PATH.match(relative) or not state.is_file():
        return f"{state} is not a snapshot's state"
    words = iter(argv[1:])
    for option in words:
        if option in FLAG_OPTIONS:
            continue
        if option not in VALUE_OPTIONS:
            return f"{option} is not an option of a plain warm run"
        value = next(words, None)
        if value is None:
            return f"{option} has no value"
        if option == "-drive" and "readonly=on" not in _qemu_list(value):
            return "a disk that is not read-only"
        if option == "-device" and DEVICE_WORDS.search(value):
            return f"-device {value} reaches the host"
        if option == "-display" and value != "none":
            return f"-display {value}"
    return None


def _qemu_list(value: str) -> list[str]:
    """The items of a QEMU option list (``a=1,b=2``; ``,,`` is a comma in a value)."""
    return [item.replace("\0", ",") for item in value.replace(",,", "\0").split(",")]
