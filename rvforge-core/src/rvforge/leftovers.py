"""Temporary names that say which process made them, and the sweeping of those whose
process is gone (killed before it could clean up: SIGKILL, a power cut, the OOM killer).

A file being written is ``.NAME.TOKEN.PID.part`` next to its final name (renamed into place when
complete); a build's scratch directory is ``rvforge-PID-XXXXXXXX`` in ``$TMPDIR``. A later
run removes those of dead processes it finds where it writes, as the cache does, and never
touches another user's or a living process's.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

from rvforge.processes import is_running

__all__ = ["SCRATCH_PREFIX", "part_path", "sweep_stale_parts", "sweep_stale_scratch"]

NAME_MAX = 255
"""Bytes of one file-name component (Linux)."""
SCRATCH_PREFIX = "rvforge-"
_PART = re.compile(r"^\..+\.([0-9]{1,10})\.part$", re.DOTALL)
_SCRATCH = re.compile(r"^rvforge-([0-9]{1,10})-[A-Za-z0-9_]+$")


def part_path(path: Path) -> Path:
    """A new temporary name for ``path``, ``.NAME.TOKEN.PID.part`` next to it; TOKEN is
    random because two threads of one process may write the same file at once. NAME is
    shortened (by whole characters) when the whole would pass :data:`NAME_MAX` bytes, so
    any name that fits the file system has a temporary name that fits too."""
    suffix = f".{secrets.token_hex(4)}.{os.getpid()}.part"
    name = path.name
    room = NAME_MAX - 1 - len(suffix)
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return path.with_name(f".{name}{suffix}")


def scratch_dir() -> Path:
    """A new private scratch directory in ``$TMPDIR`` named for this process, after
    sweeping those of dead processes."""
    sweep_stale_scratch(Path(tempfile.gettempdir()))
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))


def sweep_stale_parts(directory: Path) -> list[Path]:
    """Remove the ``.NAME.PID.part`` files in ``directory`` whose process is gone; return
    them."""
    removed: list[Path] = []
    for path, pid in _named(directory, _PART):
        if pid == os.getpid() or is_running(pid) or not path.is_file() or path.is_symlink():
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def sweep_stale_scratch(directory: Path) -> list[Path]:
    """Remove this user's ``rvforge-PID-*`` scratch directories in ``directory`` whose
    process is gone; return them."""
    removed: list[Path] = []
    for path, pid in _named(directory, _SCRATCH):
        if pid == os.getpid() or is_running(pid):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _named(directory: Path, pattern: re.Pattern[str]) -> list[tuple[Path, int]]:
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [(directory / name, int(match[1])) for name in names
            if (match := pattern.match(name)) is not None]
