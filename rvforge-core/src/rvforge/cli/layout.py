"""Output that fits the terminal: help texts and tables wrapped at word boundaries.

Help is click's plain layout (no rich markup, so ``[machines.*]`` in a docstring stays as
written), rewrapped to the terminal's width without breaking a word or a hyphenated name
(``qemu-user``, ``--no-offline``); options show a metavar naming the value they take (no
``<bool>`` on a flag), and the usage line names arguments as people write them
(``IMAGE COMMAND...``). Tables wrap their last column at word boundaries under itself, or,
when it would be too narrow, put it on lines of their own below the row.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence, Set
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["HelpFormatter", "RvforgeGroup", "fit_help", "fit_params", "fit_row", "output_width",
           "table_lines", "wrap_words"]

MIN_COLUMN = 40
"""A last column narrower than this goes on lines of its own."""
CONTINUATION = "    "
_METAVARS = {int: "N", float: "SECONDS", bool: ""}


def output_width() -> int | None:
    """The width to fit stdout to: ``$COLUMNS`` if set, else the terminal's; ``None``
    (never wrap) when stdout is not a terminal and ``COLUMNS`` is unset."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def wrap_words(text: str, width: int, *, breaks: str = " ") -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken only after a character
    of ``breaks`` (a word longer than ``width`` stays whole on its own line)."""
    pieces = re.findall(f"[^{re.escape(breaks)}]*[{re.escape(breaks)}]*", text)
    lines, line = [], ""
    for piece in filter(None, pieces):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def fit_row(lead: str, last: str, width: int | None, *, breaks: str = " ") -> list[str]:
    """``lead`` then ``last`` on one line if it fits ``width``; else ``last`` wrapped at
    ``breaks`` under itself, or, when that column would be narrower than
    :data:`MIN_COLUMN`, on lines of its own indented below ``lead``."""
    if width is None or len(lead) + len(last) <= width:
        return [(lead + last).rstrip()]
    if width - len(lead) >= MIN_COLUMN:
        wrapped = wrap_words(last, width - len(lead), breaks=breaks)
        return [lead + wrapped[0]] + [" " * len(lead) + line for line in wrapped[1:]]
    return [lead.rstrip()] + [CONTINUATION + line for line in
                              wrap_words(last, width - len(CONTINUATION), breaks=breaks)]


def table_lines(header: Sequence[str] | None, rows: Iterable[Sequence[str]], *,
                right: Set[int] = frozenset(), width: int | None = None,
                breaks: str = " ") -> list[str]:
    """Aligned columns, the last one fitted to ``width`` by :func:`fit_row`."""
    table = ([list(header)] if header is not None else []) + [list(row) for row in rows]
    if not table:
        return []
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = []
    for row in table:
        cells = [cell.rjust(w) if i in right else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines += fit_row("  ".join(cells) + "  " if cells else "", row[-1], width,
                         breaks=breaks)
    return lines


# -- help ----------------------------------------------------------------------------------


def _wrap(text: str, width: int, indent: str = "", first: str | None = None) -> str:
    """Paragraphs of ``text`` (blank-line separated; a ``\\b`` paragraph kept as is)
    rewrapped to ``width`` without breaking words or hyphenated names."""
    out = []
    for number, paragraph in enumerate(re.split(r"\n\s*\n", text.strip())):
        if paragraph.startswith("\b"):
            out.append("\n".join(indent + line for line in paragraph.splitlines()[1:]))
            continue
        wrapper = textwrap.TextWrapper(
            max(width, 10), initial_indent=first if first is not None and number == 0
            else indent, subsequent_indent=indent, break_on_hyphens=False,
            break_long_words=False)
        out.append(wrapper.fill(" ".join(paragraph.split())))
    return "\n\n".join(out)


_ClickFormatter: Any = typer.Context.formatter_class
"""click's formatter: typer 0.29 vendors click, whose classes it reaches only this way."""


class HelpFormatter(_ClickFormatter):
    """click's help layout with :func:`_wrap` for every text (no word broken)."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write(_wrap(text, self.width, indent) + "\n")

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30,
                 col_spacing: int = 2) -> None:
        rows = list(rows)
        first_col = min(max((len(r[0]) for r in rows), default=0), col_max) + col_spacing
        pad = " " * (first_col + self.current_indent)
        for first, second in rows:
            self.write(" " * self.current_indent + first)
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + pad)
            lines = _wrap(second, self.width - len(pad)).splitlines()
            self.write("\n".join([lines[0], *((pad + line).rstrip() for line in lines[1:])])
                       + "\n")


class _Context(typer.Context):
    formatter_class = HelpFormatter


def _metavar(option: TyperOption) -> str:
    """The value an option takes, named: ``N``, ``SECONDS``, ``PATH``, or its name."""
    if option.is_flag or option.count:
        return ""
    annotation = getattr(option.type_descriptor, "annotation", None)
    args = getattr(annotation, "__args__", ())
    kinds = {a for a in (annotation, *args) if isinstance(a, type)} - {type(None), list}
    for kind, name in _METAVARS.items():
        if kinds == {kind}:
            return name
    if any(getattr(kind, "__name__", "").endswith("Path") for kind in kinds):
        return "PATH"
    return (option.name or "value").rsplit("_", 1)[-1].upper()


class _Argument(TyperArgument):
    """An argument named as people write it: ``IMAGE``, ``[NAME]``, ``COMMAND...`` (in
    the usage line and the help), without typer's ``{image}`` and ``<path>``."""

    def _rich_display_name(self) -> str:
        return (self.metavar or "") + ("..." if self.nargs != 1 else "")

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self._rich_display_name()
        return [name if self.required else f"[{name}]"]

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def fit_params(params: list[Any]) -> list[Any]:
    """``params`` named as the module docstring says (metavars, arguments); returned."""
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = _metavar(param)
        elif isinstance(param, TyperArgument):
            param.metavar = param.metavar or (param.name or "arg").upper()
            param.__class__ = _Argument  # the same object, named differently in help
    return params


def fit_help(command: Any) -> None:
    """Apply the module docstring's layout to ``command`` and its subcommands."""
    command.context_class = _Context
    fit_params(command.params)
    if isinstance(command, TyperGroup):
        command.__class__ = RvforgeGroup  # nested groups list their commands whole too
        for sub in command.commands.values():
            fit_help(sub)


class RvforgeGroup(TyperGroup):
    """The ``rvforge`` command group: its commands' help fits the terminal
    (:func:`fit_help`) and each command's summary is shown whole."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fit_help(self)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, command.get_short_help_str(limit=1000))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
