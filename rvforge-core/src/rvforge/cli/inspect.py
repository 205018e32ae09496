"""``rvforge inspect``: list an artifact's entries like ``tar -tv``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rvforge.cli.common import handle_errors, load_registry
from rvforge.cli.reporting import escaped
from rvforge.context import BuildContext
from rvforge.errors import UsageError
from rvforge.tree import Entry, EntryKind, Tree


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


@handle_errors
def inspect(
    image: Annotated[Path, typer.Argument(help="A cpio or tar artifact (any compression), "
                                          "or a directory.")],
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """List every entry: type and mode, owner, size, mtime, path and link target."""
    if format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {format!r}")
    with BuildContext(load_registry()) as ctx:
        from rvforge.loading import load_path  # the archive readers: only for this command

        tree = load_path(image, ctx)
        if format == "json":
            typer.echo(json.dumps([entry_json(tree, e) for e in tree.walk()], indent=1))
        else:
            for entry in tree.walk():
                typer.echo(entry_line(tree, entry))


def mode_string(entry: Entry) -> str:
    """``drwxr-xr-x``-style type and permissions, with s/S/t/T for the special bits."""
    mode = entry.mode
    chars = [entry.kind.letter]
    for shift, special, letter in ((6, 0o4000, "s"), (3, 0o2000, "s"), (0, 0o1000, "t")):
        bits = (mode >> shift) & 7
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(letter if bits & 1 else letter.upper())
        else:
            chars.append("x" if bits & 1 else "-")
    return "".join(chars)


def entry_line(tree: Tree, entry: Entry) -> str:
    """One ``tar -tv``-style line; names are :func:`escaped` so that each entry stays
    one line whatever its name holds."""
    size = f"{entry.rdev[0]},{entry.rdev[1]}" if entry.rdev else str(tree.file_size(entry))
    try:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.mtime))
    except (OverflowError, OSError, ValueError):  # beyond what the C library can show
        stamp = f"@{entry.mtime}"[:16]
    line = (f"{mode_string(entry)} {entry.uid}/{entry.gid} {size:>10} {stamp} "
            f"{escaped(entry.path)}")
    if entry.kind is EntryKind.SYMLINK:
        line += f" -> {escaped(entry.target or '')}"
    elif entry.kind is EntryKind.HARDLINK:
        line += f" link to {escaped(entry.target or '')}"
    return line


def entry_json(tree: Tree, entry: Entry) -> dict[str, object]:
    data: dict[str, object] = {
        "path": entry.path, "type": entry.kind.value, "mode": f"{entry.mode:04o}",
        "uid": entry.uid, "gid": entry.gid, "size": tree.file_size(entry),
        "mtime": entry.mtime,
    }
    if entry.target is not None:
        data["target"] = entry.target
    if entry.rdev is not None:
        data["rdev"] = list(entry.rdev)
    return data
