"""The ``ar`` archive format as ``.deb`` files use it (deb(5)): ``!<arch>\\n``, then per member
a 60-byte header (name, mtime, uid, gid, mode, size in decimal, ``\\x60\\n``) and its bytes,
padded to an even offset. Only the member table is read: callers stream a member through a
:class:`~rvforge.tree.FileWindow` on the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rvforge.errors import InputError
from rvforge.numbers import is_decimal

__all__ = ["AR_MAGIC", "ArMember", "ar_members"]

AR_MAGIC = b"!<arch>\n"
_HEADER = 60


@dataclass(frozen=True, slots=True)
class ArMember:
    """One member: its name (without the GNU ``/`` terminator), where its bytes start in
    the archive and how many there are."""

    name: str
    offset: int
    size: int


def ar_members(raw: BinaryIO, size: int, path: Path) -> dict[str, ArMember]:
    """The members of the ar archive ``raw`` (``size`` bytes long; ``path`` names it in
    messages), by name.

    :raises InputError: not an ar archive (no magic), a corrupt header, or a member that
        runs past the end (a truncated download).
    """
    raw.seek(0)
    if raw.read(len(AR_MAGIC)) != AR_MAGIC:
        raise InputError(f"{path}: not a Debian package (no ar header)")
    members: dict[str, ArMember] = {}
    offset = len(AR_MAGIC)
    while offset < size:
        raw.seek(offset)
        header = raw.read(_HEADER)
        if len(header) < _HEADER or header[58:60] != b"`\n":
            raise InputError(f"{path}: truncated or corrupt .deb (member header at {offset})")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        length_text = header[48:58].decode("ascii", "replace").strip()
        if not is_decimal(length_text):  # int() would take "1_0", "+5" and other scripts' digits
            raise InputError(f"{path}: corrupt .deb (member {name!r} has no size)")
        length = int(length_text)
        start = offset + _HEADER
        if length < 0 or start + length > size:
            raise InputError(f"{path}: truncated .deb (member {name!r} claims {length} bytes, "
                             f"{max(0, size - start)} are there); download it again")
        members[name] = ArMember(name, start, length)
        offset = start + length + (length & 1)
    return members
