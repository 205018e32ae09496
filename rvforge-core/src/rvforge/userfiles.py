"""Reading a file rvforge is given (a config, a keyring, a local mirror's file): a regular
file only, opened without blocking, read with a cap.

``open()`` on a FIFO blocks until a writer appears (for ever), ``/dev/zero`` never ends,
and a directory fails late with a confusing error. :func:`open_regular` opens with
``O_NONBLOCK`` (which returns at once for a FIFO), checks the kind and size of what it
opened (``fstat``: no race with a swapped path), then reads normally.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import RvforgeError, UsageError

__all__ = ["expand_user", "open_regular", "read_regular"]


def expand_user(value: str | Path, what: str) -> Path:
    """``value`` with a leading ``~`` or ``~user`` expanded; a user without a home (or
    none at all) is a :class:`UsageError` naming ``what`` (``Path.expanduser`` raises
    ``RuntimeError``)."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        user = str(value).split("/", 1)[0]
        raise UsageError(f"{what} {str(value)[:200]!r}: {user} names no user with a home "
                         "directory; give the path without ~") from None


@contextmanager
def open_regular(path: Path | str, what: str, limit: int, *,
                 error: type[RvforgeError] = UsageError, hint: str = "",
                 missing: type[RvforgeError] | None = None) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file of at most ``limit`` bytes; else
    ``error`` (``missing`` for a file that does not exist) as one line naming ``path`` and
    ``what`` it was meant to be, then ``; hint`` (the fix) when given."""
    fix = f"; {hint}" if hint else ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise (missing or error)(f"{path}: {what} not found{fix}") from None
    except OSError as problem:
        raise error(f"{path}: cannot read the {what} ({problem.strerror}){fix}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):  # checked before open(fd), which refuses a directory
            raise error(f"{path}: is a directory, not a {what}{fix}")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: not a regular file (a FIFO, socket or device), so not a "
                        f"{what}{fix}")
        if st.st_size > limit:
            raise error(f"{path}: larger than {limit} bytes; not a {what}{fix}")
        os.set_blocking(fd, True)
        stream = open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def read_regular(path: Path | str, what: str, limit: int, *,
                 error: type[RvforgeError] = UsageError, hint: str = "",
                 missing: type[RvforgeError] | None = None) -> bytes:
    """The bytes of ``path`` (see :func:`open_regular`), at most ``limit`` of them: a file
    that grows past it while read is refused too."""
    with open_regular(path, what, limit, error=error, hint=hint, missing=missing) as stream:
        try:
            data = stream.read(limit + 1)
        except OSError as problem:
            raise error(f"{path}: cannot read the {what} ({problem.strerror})") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit} bytes; not a {what}")
    return data
