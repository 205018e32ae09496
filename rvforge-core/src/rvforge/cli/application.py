"""The typer application: global options and command registration."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from rvforge.cli import audit as audit_cmd
from rvforge.cli import build as build_cmd
from rvforge.cli import cache as cache_cmd
from rvforge.cli import guests as guests_cmd
from rvforge.cli import info as info_cmd
from rvforge.cli import inspect as inspect_cmd
from rvforge.cli import launch as launch_cmd
from rvforge.cli.common import LOGGING_KEY, handle_errors
from rvforge.cli.layout import RvforgeGroup
from rvforge.cli.version import version_text
from rvforge.errors import RvforgeError
from rvforge.log import LOG_FORMATS, configure_logging, get_logger, loading_plugins

EPILOG = (
    "Exit status: 0 success; 2 usage error or bad input; 3 the audit found errors; "
    "4 the image did not boot; 125 a host tool rvforge needs is missing; "
    "'rvforge run' and 'rvforge exec' exit with the guest command's status."
)

COMMAND_OUTPUT = frozenset({"run", "exec"})
"""Commands whose stdout and stderr carry a guest command's: rvforge's own log there is
warnings and errors only, unless ``-v``."""
LOGGING_OPTIONS = {"verbose": "verbose", "quiet": "quiet", "log_format": "fmt"}
"""The global options accepted after the command too, and their ``configure_logging``
names (``--debug`` is accepted there as well)."""


class _Group(RvforgeGroup):
    """The ``rvforge`` group: ``-v``/``-q``/``--log-format``/``--debug`` work after the
    command too (``rvforge run -q IMAGE -- CMD``), as the same options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shared = [p for p in self.params if p.name in (*LOGGING_OPTIONS, "debug")]
        for command in self.commands.values():
            _accept(command, shared)


def _accept(command: Any, shared: list[Any]) -> None:
    """Give ``command`` (and its subcommands) copies of the ``shared`` options that
    update the logging set up by the group's callback."""
    for option in shared:
        late = copy.copy(option)
        late.expose_value, late.callback = False, _late_option
        command.params.append(late)
    for sub in getattr(command, "commands", {}).values():
        _accept(sub, shared)


def _late_option(ctx: typer.Context, param: Any, value: Any) -> Any:
    """A global option given after the command: update and reapply the logging."""
    if not value or value == param.default:
        return value
    if param.name == "debug":
        os.environ["RVFORGE_DEBUG"] = "1"
        return value
    _check_format(ctx.meta[LOGGING_KEY]["fmt"] if param.name != "log_format" else value)
    ctx.meta[LOGGING_KEY][LOGGING_OPTIONS[param.name]] = value
    configure_logging(**ctx.meta[LOGGING_KEY])
    return value


def _check_format(fmt: str) -> None:
    if fmt not in LOG_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(LOG_FORMATS)}",
                                 param_hint="--log-format")


app = typer.Typer(
    name="rvforge",
    help="Build, audit and boot riscv64 root filesystems for QEMU.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Group,
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
    ctx: typer.Context,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More log output: debug lines (and, for "
                                              "run, the info lines it hides).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")]
    = False,
    log_format: Annotated[str, typer.Option(
        "--log-format", help=f"Log format on stderr: {', '.join(LOG_FORMATS)}.")] = "auto",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")]
    = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show rvforge's version and plugins.")] = False,
) -> None:
    _check_format(log_format)
    ctx.meta[LOGGING_KEY] = {"verbose": verbose, "quiet": quiet, "fmt": log_format,
                          "command_output": ctx.invoked_subcommand in COMMAND_OUTPUT}
    configure_logging(**ctx.meta[LOGGING_KEY])
    if debug:
        os.environ["RVFORGE_DEBUG"] = "1"


for module in (build_cmd, audit_cmd, inspect_cmd, launch_cmd, guests_cmd, info_cmd,
               cache_cmd):
    module.register(app)


def _plugin_commands(app: typer.Typer) -> None:
    """Commands the plugins add (``rvforge_add_commands``); one that fails or takes a name
    already used is reported and left out, so the rest of the CLI keeps working."""
    from rvforge.plugins import get_plugin_manager

    try:
        with loading_plugins():
            hook = get_plugin_manager().hook.rvforge_add_commands
    except RvforgeError:  # RVFORGE_STRICT_PLUGINS: the command's registry reports it
        return
    log = get_logger("rvforge.cli")
    for impl in hook.get_hookimpls():  # in registration order: earlier plugins keep names
        taken = _command_names([*app.registered_commands, *app.registered_groups])
        commands, groups = len(app.registered_commands), len(app.registered_groups)
        try:
            impl.function(app=app)
            clashes = _command_names(app.registered_commands[commands:]
                                     + app.registered_groups[groups:]) & taken
            if clashes:
                log.warning("plugin command names already used; not added",
                            plugin=impl.plugin_name, names=sorted(clashes))
        except Exception as error:
            log.warning("plugin commands not added", plugin=impl.plugin_name, error=str(error))
            clashes = {"(failed)"}
        if clashes:  # all of this plugin's commands or none
            del app.registered_commands[commands:]
            del app.registered_groups[groups:]
        else:
            _report_errors(app.registered_commands[commands:], app.registered_groups[groups:])


def _report_errors(commands: Sequence[Any], groups: Sequence[Any]) -> None:
    """Give plugin commands (and their groups' commands) rvforge's error reporting: an
    :class:`RvforgeError` is one line and its exit code, as for rvforge's own."""
    for info in commands:
        if info.callback is not None and not hasattr(info.callback, "__wrapped__"):
            info.callback = handle_errors(info.callback)
    for group in groups:
        if group.typer_instance is not None:
            _report_errors(group.typer_instance.registered_commands,
                           group.typer_instance.registered_groups)

def _command_names(infos: Sequence[Any]) -> set[str]:
    """The command-line names of typer's command and group records."""
    names = set()
    for info in infos:
        group = getattr(info, "typer_instance", None)
        name = info.name or (group.info.name if group is not None else None) \
            or getattr(info.callback, "__name__", "")
        names.add(str(name).replace("_", "-"))
    return names


_plugin_commands(app)
