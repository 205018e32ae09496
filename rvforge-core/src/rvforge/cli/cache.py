"""``rvforge cache list`` and ``rvforge cache clean``: what the cache directory holds.

The cache (``$RVFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/rvforge``, else
``~/.cache/rvforge``) is shared by every plugin. Each component names its part with the
class attribute :attr:`~rvforge.Component.cache_entries` (a glob relative to the cache →
a kind): each path a glob matches is one entry, with its size (the bytes of the files in
it) and age (since anything in it was last written). What no component claims is kind
``other``, one entry per unclaimed path.

Nothing outside the cache directory is touched: the walk never follows a symlink, a
symlink whose target leaves the cache is listed but never removed, and directories are
removed by ``shutil.rmtree``, which does not follow links either. An entry in use is
skipped: a ``.NAME.PID.part`` file (rvforge's temporary names) of a running process, an
entry a running process holds open or works in (``/proc/*/fd``, ``/proc/*/cwd``), and a
hidden temporary (``.NAME``) written in the last :data:`FRESH_SECONDS`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from rvforge.cli.common import handle_errors, load_registry
from rvforge.cli.layout import output_width, table_lines
from rvforge.errors import UsageError
from rvforge.numbers import is_decimal
from rvforge.processes import is_running
from rvforge.registry import Registry

OTHER = "other"
"""The kind of what no component claims."""
FRESH_SECONDS = 600.0
"""A hidden temporary written this recently is taken to be in use (an unpack under way)."""
PART_RE = re.compile(r"^\..+\.([0-9]+)\.part$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Claim:
    """One glob of :attr:`~rvforge.Component.cache_entries`: its path segments, kind and
    the component that declared it (``provider debootstrap``)."""

    pattern: tuple[str, ...]
    kind: str
    owner: str

    def matches(self, parts: tuple[str, ...]) -> bool:
        return len(parts) == len(self.pattern) and all(
            fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, self.pattern))

    def leads_below(self, parts: tuple[str, ...]) -> bool:
        """Whether entries of this glob may lie under the directory ``parts``."""
        return len(parts) < len(self.pattern) and all(
            fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, self.pattern))


@dataclass
class CacheEntry:
    """One entry of the cache."""

    path: str
    """Relative to the cache directory, ``/``-separated."""
    kind: str
    area: str
    """The glob that claims it (``debian/debs/*``), or the path itself for ``other``."""
    owners: list[str] = field(default_factory=list)
    bytes: int = 0
    newest: float = 0.0
    """The newest modification time of anything in it (seconds since the epoch)."""
    busy: str = ""
    """Why it is in use (then ``clean`` skips it)."""
    outside: str = ""
    """For a symlink leaving the cache: its target (``clean`` refuses it)."""

    def age(self, now: float) -> float:
        return max(0.0, now - self.newest)

    def as_json(self, now: float) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "area": self.area,
                "owners": self.owners, "bytes": self.bytes,
                "age_seconds": round(self.age(now), 1), "in_use": self.busy or None,
                "symlink_outside": self.outside or None}


def claims_of(registry: Registry) -> list[Claim]:
    """Every component's :attr:`~rvforge.Component.cache_entries`, most specific first
    (fewest wildcards)."""
    found = []
    for family, components in registry.families.items():
        if family == "machines":
            continue
        for reg in components:
            for glob, kind in getattr(reg.component, "cache_entries", {}).items():
                parts = tuple(glob.strip("/").split("/"))
                if glob.startswith("/") or any(p in ("", ".", "..") for p in parts):
                    continue  # not a path inside the cache: nothing to claim
                found.append(Claim(parts, kind, f"{family.removesuffix('s')} {reg.name}"))
    return sorted(found, key=lambda c: sum(p.count("*") + p.count("?") for p in c.pattern))


def scan(root: Path, claims: list[Claim]) -> list[CacheEntry]:
    """The entries under the cache directory ``root`` (its real path), sizes and ages
    filled in, in use marked."""
    entries: list[CacheEntry] = []
    if root.is_dir():
        _visit(root, (), claims, entries)
    busy = processes_using(root)
    for entry in entries:
        entry.busy = entry.busy or _busy(root, entry, busy)
    return entries


def _visit(root: Path, parts: tuple[str, ...], claims: list[Claim], out: list[CacheEntry]) -> None:
    directory = root.joinpath(*parts)
    with os.scandir(directory) as listing:
        children = sorted(listing, key=lambda d: d.name)
    for child in children:
        here = (*parts, child.name)
        matching = [c for c in claims if c.matches(here)]
        if matching:
            kind = matching[0].kind
            out.append(_measure(root, here, child, kind, "/".join(matching[0].pattern),
                                sorted({c.owner for c in matching if c.kind == kind})))
        elif child.is_dir(follow_symlinks=False) and any(c.leads_below(here) for c in claims):
            _visit(root, here, claims, out)
        else:
            out.append(_measure(root, here, child, OTHER, "/".join(here), []))


def _measure(root: Path, parts: tuple[str, ...], item: os.DirEntry[str], kind: str, area: str,
             owners: list[str]) -> CacheEntry:
    entry = CacheEntry("/".join(parts), kind, area, owners)
    stat = item.stat(follow_symlinks=False)
    entry.bytes, entry.newest = stat.st_size if item.is_file(follow_symlinks=False) else 0, \
        stat.st_mtime
    if item.is_symlink():
        target = os.path.realpath(item.path)
        if not _inside(root, target):
            entry.outside = os.readlink(item.path)
    elif item.is_dir(follow_symlinks=False):
        for size, mtime in _walk_sizes(item.path):
            entry.bytes += size
            entry.newest = max(entry.newest, mtime)
    match = PART_RE.match(item.name)
    if match and is_running(int(match.group(1))):
        entry.busy = f"being written by process {match.group(1)}"
    elif (item.name.startswith(".") and not match
          and time.time() - entry.newest < FRESH_SECONDS):
        entry.busy = "a temporary written in the last 10 minutes"
    return entry


def _walk_sizes(path: str) -> Iterator[tuple[int, float]]:
    """``(size, mtime)`` of everything under directory ``path``; links are not followed."""
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as listing:
                for item in listing:
                    stat = item.stat(follow_symlinks=False)
                    yield (stat.st_size if item.is_file(follow_symlinks=False) else 0,
                           stat.st_mtime)
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
        except OSError:  # vanished or unreadable meanwhile: counted as far as seen
            continue


def _inside(root: Path, path: str) -> bool:
    return path == str(root) or path.startswith(f"{root}{os.sep}")


def processes_using(root: Path) -> dict[str, int]:
    """Paths under ``root`` that running processes hold open or work in → a pid (as far as
    ``/proc`` shows this user)."""
    found: dict[str, int] = {}
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not is_decimal(proc.name) or int(proc.name) == me:
            continue
        links = [proc / "cwd"]
        try:
            links += list((proc / "fd").iterdir())
        except OSError:
            pass
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            target = target.removesuffix(" (deleted)")
            if _inside(root, target):
                found[target] = int(proc.name)
    return found


def _busy(root: Path, entry: CacheEntry, busy: dict[str, int]) -> str:
    base = str(root.joinpath(*entry.path.split("/")))
    for path, pid in busy.items():
        if path == base or path.startswith(f"{base}{os.sep}"):
            return f"in use by process {pid}"
    return ""


def remove(root: Path, entry: CacheEntry) -> None:
    """Delete ``entry`` (never through or past a symlink)."""
    path = root.joinpath(*entry.path.split("/"))
    parent = os.path.realpath(path.parent)
    if not _inside(root, parent):  # a parent was swapped for a link since the scan
        raise UsageError("its directory now leads out of the cache")
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def parse_age(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w`` (or a number of days) → seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        raise UsageError(f"--older-than {text!r}: give a number and a unit, such as 7d, 12h "
                         "or 30m (s, m, h, d, w)")
    return float(match.group(1)) * UNITS[match.group(2) or "d"]


def human_size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def human_age(seconds: float) -> str:
    for unit, length in (("w", UNITS["w"]), ("d", UNITS["d"]), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit}"
    return f"{seconds:.0f}s"


def cache_root() -> Path:
    """The cache directory, resolved once (the user may have made it a link)."""
    from rvforge.context import default_cache_dir

    return Path(os.path.realpath(default_cache_dir()))


def _entries(kinds: list[str]) -> tuple[Path, list[CacheEntry], list[str]]:
    root = cache_root()
    claims = claims_of(load_registry())
    known = sorted({c.kind for c in claims} | {OTHER})
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise UsageError(f"--kind {unknown[0]!r} is not a kind of cache entry; the kinds are "
                         f"{', '.join(known)}")
    entries = scan(root, claims)
    return root, [e for e in entries if not kinds or e.kind in kinds], known


def _check_format(format: str) -> None:
    if format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {format!r}")


FormatOption = Annotated[str, typer.Option("--format", help="text or json.")]
KindOption = Annotated[list[str] | None, typer.Option(
    "--kind", help="Only entries of this kind (repeatable): downloads, indexes, kernels, "
    "unpacked, elf-facts, qemu-probes, ... (rvforge cache list shows them).")]


@handle_errors
def list_cache(
    kind: KindOption = None,
    entries: Annotated[bool, typer.Option("--entries", "-l",
                                          help="One line per entry, not per area.")] = False,
    format: FormatOption = "text",
) -> None:
    """What the cache holds: each area's kind, owners, entries, size and ages."""
    _check_format(format)
    root, found, _ = _entries(kind or [])
    now = time.time()
    if format == "json":
        typer.echo(json.dumps({"cache_dir": str(root), "bytes": sum(e.bytes for e in found),
                               "areas": _areas_json(found, now),
                               "entries": [e.as_json(now) for e in found]}, indent=2))
        return
    total = sum(e.bytes for e in found)
    typer.echo(f"cache: {root} ({human_size(total)} in {len(found)} entries)")
    if not found:
        return
    if entries:
        rows = [[e.path, e.kind, human_size(e.bytes), human_age(e.age(now)),
                 _note(e)] for e in found]
        _table(["ENTRY", "KIND", "SIZE", "AGE", "NOTE"], rows, right={2, 3})
        return
    rows = [[a["area"], a["kind"], str(a["entries"]), human_size(a["bytes"]),
             human_age(a["newest_age_seconds"]), human_age(a["oldest_age_seconds"]),
             ", ".join(a["owners"]) or "-"] for a in _areas_json(found, now)]
    _table(["AREA", "KIND", "ENTRIES", "SIZE", "NEWEST", "OLDEST", "OWNERS"], rows,
           right={2, 3, 4, 5})


def _note(entry: CacheEntry) -> str:
    if entry.outside:
        return f"symlink out of the cache, to {entry.outside}"
    return entry.busy


def _areas_json(found: list[CacheEntry], now: float) -> list[dict[str, Any]]:
    areas: dict[str, list[CacheEntry]] = {}
    for entry in found:
        areas.setdefault(entry.area, []).append(entry)
    return [{"area": area, "kind": group[0].kind, "owners": group[0].owners,
             "entries": len(group), "bytes": sum(e.bytes for e in group),
             "newest_age_seconds": round(min(e.age(now) for e in group), 1),
             "oldest_age_seconds": round(max(e.age(now) for e in group), 1)}
            for area, group in areas.items()]


def _table(header: list[str], rows: Iterable[list[str]], right: set[int]) -> None:
    for line in table_lines(header, rows, right=right, width=output_width()):
        typer.echo(line)


@handle_errors
def clean(
    kind: KindOption = None,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="Only entries last written longer ago than this: 7d, 12h, "
        "30m.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n",
                                          help="Say what would go; remove nothing.")] = False,
    format: FormatOption = "text",
) -> None:
    """Remove cache entries: everything, or one kind (--kind), or older ones (--older-than).

    Entries in use by a running process are skipped, and nothing outside the cache
    directory is touched (a symlink leading out of it is refused).
    """
    _check_format(format)
    age = parse_age(older_than) if older_than is not None else None
    root, found, _ = _entries(kind or [])
    now = time.time()
    chosen = [e for e in found if age is None or e.age(now) > age]
    removed, skipped = [], []
    for entry in chosen:
        reason = "refused: a symlink out of the cache" if entry.outside else \
            (f"skipped: {entry.busy}" if entry.busy else "")
        if reason:
            skipped.append((entry, reason))
            continue
        if not dry_run:
            try:
                remove(root, entry)
            except (OSError, UsageError) as error:
                skipped.append((entry, f"not removed: {error}"))
                continue
        removed.append(entry)
    freed = sum(e.bytes for e in removed)
    if format == "json":
        typer.echo(json.dumps({
            "cache_dir": str(root), "dry_run": dry_run, "bytes": freed,
            "removed": [e.as_json(now) for e in removed],
            "skipped": [{**e.as_json(now), "reason": why} for e, why in skipped]}, indent=2))
        return
    for entry, why in skipped:
        typer.echo(f"{entry.path}: {why}", err=True)
    by_kind: dict[str, list[CacheEntry]] = {}
    for entry in removed:
        by_kind.setdefault(entry.kind, []).append(entry)
    verb = "would remove" if dry_run else "removed"
    for name, group in sorted(by_kind.items()):
        size = human_size(sum(e.bytes for e in group))
        typer.echo(f"{verb} {len(group)} {name} entries ({size})")
    typer.echo(f"{verb} {len(removed)} entries, {human_size(freed)}, from {root}"
               + (f"; skipped {len(skipped)}" if skipped else ""))


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(name="cache", no_args_is_help=True,
                            help="List and clean rvforge's cache of downloads, kernels, "
                            "unpacked packages and probes.")
    cache_app.command("list")(list_cache)
    cache_app.command("clean")(clean)
    app.add_typer(cache_app)
