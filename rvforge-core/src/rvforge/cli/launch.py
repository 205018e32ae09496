"""``rvforge boot`` and ``rvforge run``: start an artifact on a machine.

Besides the flags below, each command takes one flag per option the installed launchers
declare (``--share``, ``--net``, ``--kernel``, ``--qemu``...: their ``Options``
dataclasses, :func:`rvforge.option`); the chosen launcher must declare every flag given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from rvforge.artifacts import BootResult, RunResult
from rvforge.cli.common import (
    command_context,
    handle_errors,
    launcher_flags_command,
    launcher_values,
    verbose,
)
from rvforge.errors import BootFailedError, UsageError
from rvforge.launching import prepare_launch
from rvforge.machine_matrix import is_matrix

Machine = Annotated[str | None, typer.Option(help="Machine profile, or auto: the smallest "
                                             "whose CPU has what the image needs.")]
RunMachines = Annotated[str | None, typer.Option(
    "--machine", help="Machine profile, or auto: the smallest whose CPU has what the image "
    "(and the shared files the command runs) needs; A,B,C or all (every profile this QEMU "
    "boots): the command on each, a row each.")]
Launcher = Annotated[str | None, typer.Option(help="Launcher overriding the profile's "
                                              "(e.g. qemu-user).")]
Offline = Annotated[bool, typer.Option(help="Never touch the network: the cached kernel.")]
Config = Annotated[Path | None, typer.Option(help="Config file.")]


def register(app: typer.Typer) -> None:
    app.command("boot", cls=launcher_flags_command("boot"))(boot)
    app.command("run", cls=launcher_flags_command("run"))(run)


def _report_failure(result: BootResult, cli: typer.Context) -> NoReturn:
    """Exit 4 with the reason; the console's last lines when the boot itself failed (or
    with -v), not when the guest ran and the command outlived --timeout."""
    command_failed = isinstance(result, RunResult) and result.booted
    if not command_failed or verbose(cli):
        for line in result.console_tail:
            typer.echo(f"  | {line}", err=True)
    for line in result.diagnosis:
        typer.echo(f"rvforge: {line}", err=True)
    where = f"; full console log: {result.console_log}" if result.console_log else ""
    raise BootFailedError(f"{'' if command_failed else 'boot failed: '}{result.reason}{where}")


@handle_errors
def boot(
    cli: typer.Context,
    image: Annotated[Path, typer.Argument(help="An initramfs or ext4 image rvforge built.")],
    machine: Machine = None,
    launcher: Launcher = None,
    offline: Offline = False,
    config: Config = None,
) -> None:
    """Boot IMAGE, wait for rvforge's ready marker, shut down; exit 4 if it never came.
    With --interactive: a shell on the guest's console (Ctrl-] leaves)."""
    with command_context(config, offline=offline, cli=cli) as (_, ctx):
        launch = prepare_launch(image, ctx, machine=machine, launcher=launcher,
                                values=launcher_values(cli), command="boot")
        result = launch.boot(ctx)
    if not result.ok:
        _report_failure(result, cli)
    typer.echo(f"booted {image} on {launch.machine.name} in {result.seconds:.1f} s")


@handle_errors
def run(
    cli: typer.Context,
    image: Annotated[Path, typer.Argument(help="An image rvforge built.")],
    command: Annotated[list[str], typer.Argument(help="Command and arguments to run in the "
                                                 "guest (after --).")],
    machine: RunMachines = None,
    launcher: Launcher = None,
    offline: Offline = False,
    config: Config = None,
    format: Annotated[str, typer.Option(
        "--format", help="With several machines: text (a row each) or json (a record "
        "each).")] = "text",
) -> None:
    """Boot IMAGE, run COMMAND in the guest, print its output (as it comes; the kernel's
    console is kept apart) and exit with its status. A command that did not finish (timeout,
    panic) exits 4. With --machine A,B,C (or all): a row per machine; exit 0 when the
    command gave 0 on each, 1 when it gave another status on some, 4 when on some it did
    not finish."""
    if not command:
        raise UsageError("no command: rvforge run IMAGE -- CMD [ARGS...]")
    if is_matrix(machine) or format != "text":
        run_on_machines(cli, image, command, machine, launcher, offline, config, format)
    with command_context(config, offline=offline, cli=cli) as (_, ctx):
        launch = prepare_launch(image, ctx, machine=machine, launcher=launcher,
                                values=launcher_values(cli), command="run", argv=command)
        result = launch.run(list(command), ctx)
    sys.stdout.flush()
    for line in result.diagnosis:
        typer.echo(f"rvforge: {line}", err=True)
    if result.status is None:
        _report_failure(result, cli)
    raise typer.Exit(result.status)


def run_on_machines(cli: typer.Context, image: Path, command: list[str], machine: str | None,
                    launcher: str | None, offline: bool, config: Path | None,
                    fmt: str) -> NoReturn:
    """``run`` on each machine of ``--machine A,B,C`` (:mod:`rvforge.machine_matrix`)."""
    from rvforge.cli.reporting import escaped
    from rvforge.machine_matrix import (
        matrix_exit_status,
        matrix_json,
        matrix_machines,
        matrix_table,
        run_matrix,
    )

    if fmt not in ("text", "json"):
        raise UsageError(f"--format {fmt!r}: run gives text or json")
    with command_context(config, offline=offline, cli=cli) as (_, ctx):
        values = launcher_values(cli)
        names, left_out = matrix_machines(machine or ctx.registry.default_machine(), ctx,
                                          values)
        for item in left_out:
            ctx.log.info("machine left out", machine=item.machine, reason=item.reason)
        runs = run_matrix(image, command, names, ctx, launcher=launcher, values=values)
    if fmt == "json":
        typer.echo(json.dumps(matrix_json(runs, left_out), indent=2))
    else:
        typer.echo(matrix_table(runs, escaped), nl=False)
        if left_out:
            typer.echo("left out: " + "; ".join(f"{item.machine} ({item.reason})"
                                                 for item in left_out))
    raise typer.Exit(matrix_exit_status(runs))
