"""The typer application: global options and command registration."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from rvforge.cli import audit as audit_cmd
from rvforge.cli import build as build_cmd
from rvforge.cli import cache as cache_cmd
from rvforge.cli import info as info_cmd
from rvforge.cli import inspect as inspect_cmd
from rvforge.cli import launch as launch_cmd
from rvforge.cli.layout import RvforgeGroup
from rvforge.cli.version import version_text
from rvforge.log import LOG_FORMATS, configure_logging

EPILOG = (
    "Exit status: 0 success; 2 usage error or bad input; 3 the audit found errors; "
    "4 the image did not boot; 125 a host tool rvforge needs is missing; "
    "'rvforge run' exits with the guest command's status."
)

app = typer.Typer(
    name="rvforge",
    help="Build, audit and boot riscv64 root filesystems for QEMU.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=RvforgeGroup,
    rich_markup_mode=None,  # click's plain layout: docstrings are text, not rich markup
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def callback(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output (debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")]
    = False,
    log_format: Annotated[str, typer.Option(
        "--log-format", help=f"Log format on stderr: {', '.join(LOG_FORMATS)}.")] = "auto",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
    = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show rvforge's version and plugins.")] = False,
) -> None:
    if log_format not in LOG_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_FORMATS)}",
                                 param_hint="--log-format")
    configure_logging(verbose=verbose, quiet=quiet, fmt=log_format)
    if debug:
        os.environ["RVFORGE_DEBUG"] = "1"


for module in (build_cmd, audit_cmd, inspect_cmd, launch_cmd, info_cmd, cache_cmd):
    module.register(app)
