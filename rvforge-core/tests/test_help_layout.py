"""Output that fits a terminal: every command's --help at 80 and 200 columns shows each
option's help text whole (no word cut, no markup eaten), lines within the width, metavars
that name values; tables wrap their last column at word boundaries."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import typer.main
from fixture_types import RunRvforge
from typer.testing import CliRunner

from rvforge.cli import app
from rvforge.cli.layout import fit_row, table_lines, wrap_words
from rvforge.launching import launcher_flags
from rvforge.registry import build_registry

runner = CliRunner()


def command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], object]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


COMMANDS = list(command_paths(typer.main.get_command(app)))


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "-")
def test_every_help_text_reads_whole(path: tuple[str, ...], columns: int) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    shown = words(result.output)
    command = dict(COMMANDS)[path]
    texts = [p.help for p in command.params if getattr(p, "help", None)]  # type: ignore[attr-defined]
    if launch_command := getattr(command, "launch_command", None):  # flags launchers declare
        texts += [spec.help for spec in launcher_flags(build_registry(), launch_command)
                  if spec.help]
    texts += [sub.get_short_help_str(1000) for sub in getattr(command, "commands", {}).values()]
    assert texts
    for text in texts:
        assert words(text) in shown, f"{text!r} is not whole in:\n{result.output}"
    assert all(len(line) <= columns for line in result.output.splitlines()), result.output
    for noise in ("<bool>", "<str>", "<Any>", "<path>", "<int>", "{", "…"):
        assert noise not in result.output, result.output


def test_a_docstring_is_one_paragraph_not_its_source_line_breaks() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  run "))
    # the entry's continuation lines, up to the next command's (the commands that follow
    # have continuation lines of their own)
    following = itertools.takewhile(lambda line: line.startswith(" " * 12), lines[start + 1:])
    entry = [lines[start], *following]
    assert words(" ".join(entry)) == (
        "run Boot IMAGE, run COMMAND in the guest, print its output (as it comes; the "
        "kernel's console is kept apart) and exit with its status.")
    assert all(len(line) > 60 for line in entry[:-1]), entry  # filled, not ragged


def test_brackets_in_help_are_text_not_markup() -> None:
    result = runner.invoke(app, ["machines", "--help"], env={"COLUMNS": "80"})
    assert "Config file with [machines.*] tables." in result.output


def test_usage_names_arguments_as_people_write_them() -> None:
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "80"})
    assert "Usage: rvforge run [OPTIONS] IMAGE COMMAND..." in result.output
    assert "  --timeout SECONDS " in result.output and "  --cpus N " in result.output
    assert "  --gdb  " in result.output


def test_a_long_default_is_wrapped_at_words_not_cut() -> None:
    result = runner.invoke(app, ["build", "--help"], env={"COLUMNS": "80"})
    assert "build/<provider>-<release>-riscv64.cpio.gz." in result.output


def test_words_wrap_only_at_the_given_breaks() -> None:
    isa = "rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc"
    lines = wrap_words(isa, 30, breaks="_")
    assert "".join(lines) == isa and all(len(line) <= 30 for line in lines)
    assert lines[0] == "rv64imafdch_zicsr_zifencei_"
    assert wrap_words("a-very-long-hyphenated-name x", 10) == ["a-very-long-hyphenated-name",
                                                                "x"]


def test_a_row_keeps_one_line_when_it_fits_else_its_last_cell_moves_below() -> None:
    assert fit_row("name  ", "short", 80) == ["name  short"]
    assert fit_row("x" * 30 + "  ", "owner one, owner two, " * 3, 80) == [
        "x" * 30 + "  owner one, owner two, owner one, owner two,",
        " " * 32 + "owner one, owner two,"]
    assert fit_row("x" * 60, "kernel debian, provider debootstrap", 80) == [
        "x" * 60, "    kernel debian, provider debootstrap"]
    assert fit_row("x" * 60, "anything", None) == ["x" * 60 + "anything"]


def test_a_table_aligns_its_columns_and_right_aligns_numbers() -> None:
    assert table_lines(["A", "N", "LAST"], [["aa", "1", "x"], ["b", "22", "y"]],
                       right={1}) == ["A    N  LAST", "aa   1  x", "b   22  y"]


def test_machines_at_80_columns_keep_each_isa_string_whole(rvforge_cli: RunRvforge) -> None:
    listed = rvforge_cli("machines", env={"COLUMNS": "80"}, check=True)
    assert all(len(line) <= 80 for line in listed.stdout.splitlines()), listed.stdout
    assert "    rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc\n" in listed.stdout
    wide = rvforge_cli("machines", env={"COLUMNS": "200"}, check=True)
    assert "qemu-virt    2048 MB 2 cpus  rv64imafdch_zicsr_" in wide.stdout
