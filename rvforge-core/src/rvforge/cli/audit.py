"""``rvforge audit``: check a tree, archive or ELF file against a target machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rvforge import pipeline
from rvforge.cli.common import handle_errors, load_registry
from rvforge.cli.reporting import FORMATS, render
from rvforge.config import load_config
from rvforge.context import BuildContext
from rvforge.errors import ExitCode, UsageError
from rvforge.loading import load_path


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


@handle_errors
def audit(
    path: Annotated[Path, typer.Argument(help="A directory, tarball, cpio archive (any "
                                         "compression) or single ELF file.")],
    machine: Annotated[str | None, typer.Option(help="Target machine profile.")] = None,
    isa: Annotated[str | None, typer.Option(help="Target ISA or profile instead of a "
                                            "machine's (rv64gc, rv64gcv, rva23u64).")] = None,
    deep: Annotated[bool, typer.Option(help="Also sweep executable code for "
                                       "instructions.")] = False,
    format: Annotated[str, typer.Option("--format", help="text, json or sarif.")] = "text",
    auditor: Annotated[list[str] | None, typer.Option(
        help="Run only this auditor (repeatable; default: all).")] = None,
    config: Annotated[Path | None, typer.Option(help="Config file (for [machines.*]).")]
    = None,
) -> None:
    """Audit every ELF in PATH against the target CPU; exit 3 when errors are found."""
    if format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if machine and isa:
        raise UsageError("--machine and --isa exclude each other")
    settings = load_config(config)
    registry = load_registry()
    for profile in settings.machines:
        registry.add_machine(profile)
    with BuildContext(registry, deep=deep, settings=settings.plugins) as ctx:
        target = registry.resolve_machine(machine, isa, ctx)
        tree = load_path(path, ctx)
        report = pipeline.audit(registry, tree, target, ctx, auditor)
        typer.echo(render(report, format, deep=deep), nl=False)
    if report.errors:
        raise typer.Exit(int(ExitCode.AUDIT))
