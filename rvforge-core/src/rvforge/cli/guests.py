"""``rvforge up`` / ``exec`` / ``ps`` / ``down``: guests that keep running between commands
(see :mod:`rvforge.kept`). ``up`` takes ``rvforge run``'s launcher flags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from rvforge import kept
from rvforge.cli.common import handle_errors, launcher_flags_command, launcher_values
from rvforge.cli.quickexec import execute
from rvforge.errors import UsageError

AFTER_KEY = "rvforge.exec-after-dashdash"


def register(app: typer.Typer) -> None:
    app.command("up", cls=launcher_flags_command("run"))(up)
    app.command("exec", cls=ExecCommand)(exec_)
    app.command("ps")(ps)
    app.command("down")(down)


@handle_errors
def up(
    cli: typer.Context,
    image: Annotated[Path, typer.Argument(help="An image rvforge built.")],
    name: Annotated[str | None, typer.Option(help="The guest's name (default: the image's "
                                             "name up to its first dot).")] = None,
    machine: Annotated[str | None, typer.Option(help="Machine profile.")] = None,
    launcher: Annotated[str | None, typer.Option(help="Launcher overriding the "
                                                 "profile's.")] = None,
    idle_timeout: Annotated[float, typer.Option(
        help="Stop the guest after this many seconds without a command.")]
    = kept.DEFAULT_IDLE_SECONDS,
    offline: Annotated[bool, typer.Option(help="Never touch the network.")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file.")] = None,
) -> None:
    """Start IMAGE in the background (from its snapshot when there is one) and return
    once it is ready; then `rvforge exec NAME -- CMD`, `rvforge down NAME`."""
    if not image.is_file():
        raise UsageError(f"{image}: no such image file")
    guest = kept.check_name(name or kept.default_name(image))
    if idle_timeout <= 0:
        raise UsageError(f"--idle-timeout {idle_timeout:g}: must be more than 0 seconds")
    directory = kept.runtime_dir()
    if any(r.name == guest for r in kept.records(directory)):
        raise UsageError(f"a guest named {guest!r} is already running; pick another "
                         "--name or stop it with rvforge down " + guest)
    spec = {"name": guest, "image": str(image.resolve()), "machine": machine,
            "launcher": launcher, "values": launcher_values(cli), "offline": offline,
            "idle_timeout": idle_timeout, "config": str(config.resolve()) if config else None}
    started = time.monotonic()
    kept.start_keeper(spec, directory / f"{guest}.log", timeout=30)
    typer.echo(f"{guest} is up ({time.monotonic() - started:.1f} s); "
               f"rvforge exec {guest} -- CMD")


@handle_errors
def exec_(
    cli: typer.Context,
    words: Annotated[list[str], typer.Argument(help="[NAME] -- COMMAND [ARGS...]")],
    timeout: Annotated[float | None, typer.Option(help="Seconds the command may take.")]
    = None,
) -> None:
    """Run COMMAND in the kept guest NAME (or the only one running), print its output and
    exit with its status, as rvforge run does; what it changes, the next command sees."""
    name, argv = _split(words, cli.meta.get(AFTER_KEY))
    raise typer.Exit(execute(name, argv, timeout))


@handle_errors
def ps() -> None:
    """List the kept guests: name, image, machine, age, shares, forwarded ports."""
    records = kept.records(kept.runtime_dir())
    if not records:
        typer.echo("no guests running")
        return
    rows = [("NAME", "IMAGE", "MACHINE", "AGE", "SHARES", "FORWARDS")]
    for r in records:
        rows.append((r.name, Path(r.image).name, r.machine, _age(time.time() - r.started),
                     ",".join(r.shares) or "-", ",".join(r.forwards) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@handle_errors
def down(
    name: Annotated[str | None, typer.Argument(help="The guest to stop.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every kept guest.")] = False,
) -> None:
    """Stop the kept guest NAME (or all of them); no VM outlives this command."""
    if (name is None) == (not all_):
        raise UsageError("give a guest's name or --all (rvforge down NAME|--all)")
    directory = kept.runtime_dir()
    targets = kept.records(directory) if all_ else [kept.find(directory, name)]
    for record in targets:
        kept.stop(directory, record)
        typer.echo(f"{record.name} is down")


class ExecCommand(TyperCommand):
    """``rvforge exec``: remembers how many words came after ``--`` (click drops the
    marker), which tells a guest's name from the command's first word."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[AFTER_KEY] = len(args) - args.index("--") - 1 if "--" in args else None
        return list(super().parse_args(ctx, args))


def _split(words: list[str], after: int | None) -> tuple[str | None, list[str]]:
    """``[NAME] -- CMD...``: the words before ``--`` name the guest (at most one)."""
    before = len(words) - after if after is not None else 0
    if before > 1:
        raise UsageError("rvforge exec [NAME] -- CMD: one guest name before --, "
                         f"got {' '.join(words[:before])!r}")
    name, argv = (words[0], words[1:]) if before else (None, words)
    if not argv:
        raise UsageError("no command: rvforge exec [NAME] -- CMD [ARGS...]")
    return name, argv


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
