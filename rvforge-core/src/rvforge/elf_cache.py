"""A warm cache of per-file ELF facts, so a second audit of a tree reads no ELF headers.

What is cached, per file: "not an ELF file", the :class:`~rvforge.elf.ElfInfo` (without
symbol tables, which are read only when needed), or the :class:`ElfUnreadableError`
message. The key is the file's identity:

* a :class:`~rvforge.tree.HostFile`: path, device, inode, size, ``st_mtime_ns`` *and*
  ``st_ctime_ns``. The kernel sets ctime on every write and nobody can set it back
  (``touch``/``tar`` set mtime, not ctime), so a rewritten file — even one given back its
  old size and mtime, or a new file that reuses a freed inode — never matches an old key.
  Facts are stored only when the file was not changed while it was read (``fstat`` before
  and after) and its ctime is more than :data:`RACY_SECONDS` old: a file written within
  the timestamp granularity of the read could change again without a new ctime (git's
  "racy clean" problem). Such files are simply read again next time.
* :class:`~rvforge.tree.InlineBytes`: a BLAKE2b hash of the bytes.
* any other content: not cached.

Storage: one SQLite database, ``<cache>/elf-facts/facts.sqlite3``, table
``facts(key, value, stamp)``; values are compact JSON (safe to load whatever is in the
file, unlike pickle). ``PRAGMA user_version`` holds :data:`FORMAT_VERSION`: a database of
another version is emptied. Above :data:`MAX_ROWS` the oldest half is dropped. Any
SQLite error (read-only or corrupt cache, a locked database) makes the cache a no-op,
never a failure of the audit. Measured choice: a lookup of 3,366 keys in one query and
decoding 685 JSON rows takes ~10 ms; a pickle per tree would need a tree identity, which
changes with every re-extraction even when most files do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from rvforge.elf import CodeRange, ElfInfo
from rvforge.tree import Content, HostFile, InlineBytes

FORMAT_VERSION = 1
"""Bumped whenever :class:`ElfInfo` or what the reader puts in it changes."""
RACY_SECONDS = 2.0
"""Files whose ctime is younger than this when read are not cached (see module doc)."""
MAX_ROWS = 200_000
"""Rows kept; above this the oldest half is dropped when the cache is opened."""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Facts:
    """What one file is, as far as the auditors care.

    :param info: the ELF facts, or ``None`` when the file is not an ELF file or unreadable.
    :param error: why an ELF file cannot be read (``elf-unreadable``), else ``None``.
    """

    info: ElfInfo | None = None
    error: str | None = None

    @property
    def is_elf(self) -> bool:
        return self.info is not None or self.error is not None


NOT_ELF = Facts()


def content_key(content: Content, stat: os.stat_result | None = None) -> str | None:
    """The cache key of ``content`` (``None``: not cacheable). For a :class:`HostFile`
    ``stat`` is the file's current ``stat`` (taken here when not given)."""
    if isinstance(content, InlineBytes):
        return "b:" + hashlib.blake2b(content.data, digest_size=16).hexdigest()
    if isinstance(content, HostFile):
        if stat is None:
            try:
                stat = os.stat(content.path)
            except OSError:
                return None
        return (f"h:{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:"
                f"{stat.st_ctime_ns}:{content.path}")
    return None


def settled(stat: os.stat_result) -> bool:
    """Whether a file with this ``stat`` is old enough (:data:`RACY_SECONDS`) for its facts
    to be cached."""
    newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
    return time.time_ns() - newest > RACY_SECONDS * 1e9


class ElfFactsCache:
    """The facts database (see the module docstring); use as a context manager or call
    :meth:`close`, which writes what :meth:`put` collected in one transaction."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self._db = connection
        self._pending: dict[str, str] = {}

    @classmethod
    def open(cls, directory: Path) -> ElfFactsCache:
        """The cache in ``directory`` (a disabled one when SQLite cannot use it)."""
        try:
            db = sqlite3.connect(directory / "facts.sqlite3", timeout=5,
                                 isolation_level=None)
            try:
                _prepare(db)
            except sqlite3.Error:
                db.close()
                raise
        except sqlite3.Error:
            return cls(None)
        return cls(db)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Facts]:
        """The cached facts of those ``keys`` that have any."""
        if self._db is None:
            return {}
        found: dict[str, Facts] = {}
        wanted = list(keys)
        try:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                rows = self._db.execute(
                    f"SELECT key, value FROM facts WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk)
                for key, value in rows:
                    facts = decode(value)
                    if facts is not None:
                        found[key] = facts
        except sqlite3.Error:
            return found
        return found

    def put(self, key: str, facts: Facts) -> None:
        """Remember ``facts`` under ``key`` (written by :meth:`close`)."""
        if self._db is not None:
            self._pending[key] = encode(facts)

    def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._pending:
                stamp = int(time.time())
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO facts (key, value, stamp) VALUES (?, ?, ?)",
                    [(k, v, stamp) for k, v in self._pending.items()])
                self._db.execute("COMMIT")
        except sqlite3.Error:
            pass  # a cache that cannot be written only makes the next audit slower
        finally:
            self._pending.clear()
            self._db.close()
            self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _prepare(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version != FORMAT_VERSION:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DROP TABLE IF EXISTS facts")
        db.execute("CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                   "stamp INTEGER NOT NULL) WITHOUT ROWID")
        db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        db.execute("COMMIT")
        return
    (rows,) = db.execute("SELECT count(*) FROM facts").fetchone()
    if rows > MAX_ROWS:
        db.execute("DELETE FROM facts WHERE key IN (SELECT key FROM facts ORDER BY stamp "
                   "LIMIT ?)", (rows - MAX_ROWS // 2,))


def encode(facts: Facts) -> str:
    """``facts`` as compact JSON: ``0`` (not ELF), ``"message"`` (unreadable) or a list."""
    if facts.info is None:
        return json.dumps(facts.error) if facts.error is not None else "0"
    i = facts.info
    return json.dumps([
        i.e_machine, i.machine, i.elf_class, i.e_type, i.e_flags, i.arch,
        [[k, v] for k, v in i.attributes.items()], i.interp, i.needed, i.soname, i.rpath,
        i.runpath, [[k, v] for k, v in i.version_needs.items()], i.version_defs,
        [[c.name, c.offset, c.size, c.address] for c in i.code]], separators=(",", ":"))


def decode(value: str) -> Facts | None:
    """The inverse of :func:`encode` (``None`` for a value it cannot have written)."""
    if value == "0":  # most files of a tree: skip the JSON parser
        return NOT_ELF
    try:
        data = json.loads(value)
        if data == 0:
            return NOT_ELF
        if isinstance(data, str):
            return Facts(error=data)
        (e_machine, machine, elf_class, e_type, e_flags, arch, attributes, interp, needed,
         soname, rpath, runpath, version_needs, version_defs, code) = data
        return Facts(ElfInfo(
            e_machine, machine, elf_class, e_type, e_flags, arch,
            {int(k): v for k, v in attributes}, interp, tuple(needed), soname, tuple(rpath),
            tuple(runpath), {k: tuple(v) for k, v in version_needs}, tuple(version_defs),
            tuple(CodeRange(*c) for c in code)))
    except (ValueError, TypeError):
        return None
