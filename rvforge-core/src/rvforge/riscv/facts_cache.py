"""A warm cache of ELF facts, so a second audit of a tree reads no ELF headers.

Per file it holds "not an ELF file", the :class:`~rvforge.riscv.elf.ElfInfo` (without
symbol tables, which are read only when needed), or the :class:`ElfUnreadableError`
message, keyed by the file's identity:

* a :class:`~rvforge.tree.HostFile`: path, offset (for a window on a file), device,
  inode, size, ``st_mtime_ns`` and ``st_ctime_ns`` (a :class:`~rvforge.tree.FileIdentity`).
  A rewrite always sets a new ctime, so a rewritten file never matches an old key. A file
  carrying the identity its reader recorded is keyed by that, with no ``stat`` here; the
  audit then describes the tree as it was read, and whatever opens the file later
  (:func:`~rvforge.riscv.elf_files.scan_content`, the packers) refuses it as
  "changed during the build" if its ``fstat`` differs. A file without one is ``stat``-ed.
  Facts are stored only for files unchanged while read and with a ctime older than
  :data:`RACY_SECONDS` (a write within the timestamp granularity could be followed by
  another with the same ctime: git's "racy clean" problem).
* :class:`~rvforge.tree.InlineBytes`: a BLAKE2b hash of the bytes.
* any other content: not cached.

Two tables in one SQLite database, ``<cache>/elf-facts/facts.sqlite3``, values compact JSON
(safe to load whatever is in the file, unlike pickle):

* ``facts(key, value, stamp)``: one row per file (:func:`encode`; ``0`` for not ELF).
* ``trees(key, value, stamp)``: one row per set of files, keyed by a hash of every
  member's (tree path, file key) pair (:func:`tree_key`), holding the facts of its ELF
  members (:func:`encode_tree`): an unchanged tree is one lookup and one parse; any
  change falls back to the file rows. The newest :data:`MAX_TREES` are kept.

``PRAGMA user_version`` holds :data:`FORMAT_VERSION`: a database of another version (or
missing a table) is emptied. A write that leaves more than :data:`MAX_ROWS` file rows drops
the oldest half. Any SQLite error (read-only or corrupt cache, a locked database) makes the
cache a no-op, never a failure of the audit. What each choice saves is measured in
docs/performance.md ("Auditing").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from rvforge.riscv.elf import CodeRange, ElfInfo
from rvforge.tree import Content, FileIdentity, HostFile, InlineBytes

__all__ = ["FORMAT_VERSION", "NOT_ELF", "ElfFactsCache", "Facts", "content_key", "decode",
           "decode_tree", "encode", "encode_tree", "host_key", "settled", "tree_key"]

FORMAT_VERSION = 4
"""Bumped whenever :class:`ElfInfo`, what the reader puts in it or the tables change."""
RACY_SECONDS = 2.0
"""Files whose ctime is younger than this when read are not cached (see module doc)."""
MAX_ROWS = 200_000
"""File rows kept; a write that leaves more drops the oldest half."""
MAX_TREES = 32
"""Tree rows kept (the newest); each holds the facts of all ELF files of one tree."""
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


def content_key(content: Content) -> str | None:
    """The cache key of ``content`` (``None``: not cacheable). A :class:`HostFile` is
    keyed by the identity it carries, else by a ``stat`` of the file now."""
    if isinstance(content, HostFile):
        identity = content.identity
        if identity is None:
            try:
                identity = FileIdentity.of(os.stat(content.path))
            except OSError:
                return None
        return host_key(content, identity)
    if isinstance(content, InlineBytes):
        return "b:" + hashlib.blake2b(content.data, digest_size=16).hexdigest()
    return None


def host_key(content: HostFile, identity: FileIdentity) -> str:
    """The cache key of ``content`` when its file has this ``identity``."""
    offset = "" if content.offset is None else content.offset
    dev, ino, size, mtime_ns, ctime_ns = identity
    return f"h:{dev}:{ino}:{size}:{mtime_ns}:{ctime_ns}:{offset}:{content.path}"


def tree_key(members: Iterable[tuple[str, str]]) -> str:
    """The key of a tree's row: a hash of every member's (tree path, file key) pair, in
    order (neither holds a NUL byte, so NUL separates them unambiguously)."""
    text = "\0".join(itertools.chain.from_iterable(members))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def settled(identity: FileIdentity) -> bool:
    """Whether a file of this ``identity`` is old enough (:data:`RACY_SECONDS`) for its
    facts to be cached."""
    newest = max(identity.mtime_ns, identity.ctime_ns)
    return time.time_ns() - newest > RACY_SECONDS * 1e9


class ElfFactsCache:
    """The facts database (see the module docstring); use as a context manager or call
    :meth:`close`, which writes what :meth:`put` and :meth:`put_tree` collected in one
    transaction."""

    def __init__(self, connection: sqlite3.Connection | None) -> None:
        self._db = connection
        self._pending: dict[str, str] = {}
        self._pending_trees: dict[str, str] = {}

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

    def get_tree(self, key: str) -> dict[str, Facts] | None:
        """The facts of the ELF members of the tree row ``key`` by path, or ``None``."""
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT value FROM trees WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        return decode_tree(row[0]) if row is not None else None

    def put(self, key: str, facts: Facts) -> None:
        """Remember ``facts`` under ``key`` (written by :meth:`close`)."""
        if self._db is not None:
            self._pending[key] = encode(facts)

    def put_tree(self, key: str, members: dict[str, Facts]) -> None:
        """Remember the facts of a tree's ELF ``members`` (by path) under the tree ``key``
        (written by :meth:`close`)."""
        if self._db is not None:
            self._pending_trees[key] = encode_tree(members)

    def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._pending or self._pending_trees:
                self._write()
        except sqlite3.Error:
            pass  # a cache that cannot be written only makes the next audit slower
        finally:
            self._pending.clear()
            self._pending_trees.clear()
            self._db.close()
            self._db = None

    def _write(self) -> None:
        assert self._db is not None
        stamp = time.time_ns()
        self._db.execute("BEGIN IMMEDIATE")
        for table, pending in (("facts", self._pending), ("trees", self._pending_trees)):
            self._db.executemany(
                f"INSERT OR REPLACE INTO {table} (key, value, stamp) VALUES (?, ?, ?)",
                [(k, v, stamp) for k, v in pending.items()])
        _trim(self._db, "trees", MAX_TREES, MAX_TREES)
        _trim(self._db, "facts", MAX_ROWS, MAX_ROWS // 2)
        self._db.execute("COMMIT")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


_TABLES = ("facts", "trees")


def _prepare(db: sqlite3.Connection) -> None:
    """Empty a database of another format (or missing a table)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE "
                                             "type = 'table'")}
    if version != FORMAT_VERSION or not tables.issuperset(_TABLES):
        db.execute("BEGIN IMMEDIATE")
        for table in _TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"CREATE TABLE {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                       "stamp INTEGER NOT NULL) WITHOUT ROWID")
        db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        db.execute("COMMIT")


def _trim(db: sqlite3.Connection, table: str, most: int, keep: int) -> None:
    """Above ``most`` rows in ``table``, keep the newest ``keep`` (counting scans the
    table: done when writing, not on every lookup)."""
    (rows,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    if rows > most:
        db.execute(f"DELETE FROM {table} WHERE key IN (SELECT key FROM {table} ORDER BY "
                   "stamp LIMIT ?)", (rows - keep,))


def encode(facts: Facts) -> str:
    """``facts`` as compact JSON: ``0`` (not ELF), ``"message"`` (unreadable) or a list."""
    return json.dumps(_to_json(facts), separators=(",", ":"))


def decode(value: str) -> Facts | None:
    """The inverse of :func:`encode` (``None`` for a value it cannot have written)."""
    if value == "0":  # most files of a tree: skip the JSON parser
        return NOT_ELF
    try:
        return _from_json(json.loads(value))
    except (ValueError, TypeError):
        return None


def encode_tree(members: dict[str, Facts]) -> str:
    """A tree row: ``[columns, rows]`` in one JSON array. ``columns`` holds, per
    :class:`ElfInfo` field, its distinct values (as :func:`encode` writes them); a row is
    ``[path, i0, ... i16]``, indices into the columns, or ``[path, "message"]`` for an
    unreadable ELF file. Most values recur (a tree has a few ISA attributes and C library
    version sets), so the row is a third of the size and decodes twice as fast."""
    columns: list[list[object]] = [[] for _ in _FIELDS]
    seen: list[dict[object, int]] = [{} for _ in _FIELDS]
    rows: list[list[object]] = []
    for path, facts in members.items():
        data = _to_json(facts)
        if not isinstance(data, list):
            rows.append([path, data])
            continue
        row: list[object] = [path]
        for column, index, value in zip(columns, seen, data, strict=True):
            key = tuple(value) if isinstance(value, list) else value  # of pairs: hashable
            if key not in index:
                index[key] = len(column)
                column.append(value)
            row.append(index[key])
        rows.append(row)
    return json.dumps([columns, rows], separators=(",", ":"))


def decode_tree(value: str) -> dict[str, Facts] | None:
    """The inverse of :func:`encode_tree` (``None`` for a value it cannot have written).
    ELF files that share a value share the object (facts are never modified)."""
    try:
        columns, rows = json.loads(value)
        values = [[convert(v) for v in column]
                  for convert, column in zip(_FIELDS, columns, strict=True)]
        found: dict[str, Facts] = {}
        for path, *fields in rows:
            if len(fields) == 1 and isinstance(fields[0], str):
                found[_STR(path)] = Facts(error=fields[0])
            else:
                found[_STR(path)] = Facts(ElfInfo(*[column[_index(i)] for column, i in
                                                    zip(values, fields, strict=True)]))
        return found
    except (ValueError, TypeError, IndexError):
        return None


def _index(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise TypeError(f"{value!r}: not an index")
    return value


def _to_json(facts: Facts) -> object:
    if facts.info is None:
        return facts.error if facts.error is not None else 0
    i = facts.info
    return [i.e_machine, i.machine, i.elf_class, i.e_type, i.e_flags, i.arch,
            list(i.attributes.items()), i.interp, i.needed, i.soname, i.rpath, i.runpath,
            list(i.version_needs.items()), i.version_defs, i.code, i.has_dynamic, i.flags_1]


def _from_json(data: object) -> Facts:
    """Raises ``ValueError``/``TypeError`` for data :func:`_to_json` cannot have made."""
    if data == 0:
        return NOT_ELF
    if isinstance(data, str):
        return Facts(error=data)
    if not isinstance(data, list):
        raise TypeError(f"not a facts row: {data!r}")
    return Facts(ElfInfo(*[convert(v) for convert, v in zip(_FIELDS, data, strict=True)]))


def _typed(*kinds: type | None) -> Callable[[Any], Any]:
    """A converter accepting a value of exactly one of ``kinds`` (``None``: JSON null); a
    row of the wrong types (another version's, a damaged file) is refused, not trusted."""
    def check(value: Any) -> Any:
        if not any(value is None if kind is None else type(value) is kind for kind in kinds):
            raise TypeError(f"{value!r}: not {' or '.join(str(k) for k in kinds)}")
        return value
    return check


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(type(v) is str for v in value):
        raise TypeError(f"{value!r}: not a list of strings")
    return tuple(value)


def _attributes(pairs: Any) -> dict[int, int | str]:
    return {_INT(k): _typed(int, str)(v) for k, v in pairs}


def _code(ranges: Any) -> tuple[CodeRange, ...]:
    return tuple(CodeRange(_STR(name), *map(_INT, numbers)) for name, *numbers in ranges)


_INT, _STR, _OPTIONAL_STR = _typed(int), _typed(str), _typed(str, None)
_FIELDS: tuple[Callable[[Any], Any], ...] = (
    _INT, _STR, _INT, _STR, _INT, _OPTIONAL_STR,  # e_machine, machine, class, type, flags, arch
    _attributes,
    _OPTIONAL_STR, _strings, _OPTIONAL_STR,  # interp, needed, soname
    _strings, _strings,  # rpath, runpath
    lambda pairs: {_STR(k): _strings(v) for k, v in pairs},  # version_needs
    _strings,  # version_defs
    _code,
    _typed(bool), _INT,  # has_dynamic, flags_1
)
"""How each :class:`ElfInfo` field comes back from JSON, in field order."""
