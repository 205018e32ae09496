"""What every command shares: error reporting, the config, registry and context every
command starts from, the flags derived from the installed launchers' declarations."""

from __future__ import annotations

import functools
import gc
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import typer
import typer.main
from typer.core import TyperCommand

from rvforge.cli.layout import fit_params
from rvforge.cli.reporting import escaped
from rvforge.config import Config
from rvforge.context import BuildContext
from rvforge.errors import ExitCode, RvforgeError
from rvforge.launching import configured_context, launcher_flags
from rvforge.options import OptionSpec
from rvforge.registry import Registry, build_registry

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn expected errors into one line on stderr and their exit code (no traceback
    unless ``--debug``); Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _collect_garbage_from_now()
        debug = _debug()
        try:
            return func(*args, **kwargs)
        except RvforgeError as error:
            if debug:
                traceback.print_exc()
            message = str(error)  # a name from the input may hold a newline: still one line
            typer.echo(f"rvforge: error: {message if message.isprintable() else escaped(message)}",
                       err=True)
            raise typer.Exit(int(error.exit_code)) from None
        except BrokenPipeError:
            # the reader went away (`rvforge inspect X | head`): stop quietly, as `cat` does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(128 + 13) from None
        except KeyboardInterrupt:
            typer.echo("rvforge: interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as error:
            if debug:
                traceback.print_exc()
            name = f"{error.filename}: " if error.filename else ""
            typer.echo(f"rvforge: error: {name}{error.strerror or error}", err=True)
            raise typer.Exit(int(ExitCode.USAGE)) from None

    return wrapper  # type: ignore[return-value]


def _collect_garbage_from_now() -> None:
    """The command starts: what start-up made stays (frozen, never scanned again) and
    the collector runs again (:func:`rvforge.cli.main` held it during start-up)."""
    gc.freeze()
    gc.enable()


def _debug() -> bool:
    """``--debug`` (which sets ``RVFORGE_DEBUG``) or ``RVFORGE_DEBUG=1``."""
    return os.environ.get("RVFORGE_DEBUG", "") not in ("", "0")


def load_registry() -> Registry:
    return build_registry()


@contextmanager
def command_context(config: Path | None = None, *, offline: bool = False,
                    deep: bool = False, cli: typer.Context | None = None
                    ) -> Iterator[tuple[Config, BuildContext]]:
    """What most commands start with: the config (``--config``, else ``./rvforge.toml``),
    the registry (the one the launcher flags of ``cli`` came from, if any) with the
    config's machine profiles added, and a context for the work, which takes what was
    started before the command line was parsed (:mod:`rvforge.prestart`)."""
    registry = cli.meta.get(REGISTRY_KEY) if cli is not None else None
    with configured_context(config, offline=offline, deep=deep,
                            registry=registry or load_registry()) as opened:
        if cli is not None and isinstance(cli.obj, list):  # rvforge.cli.main's prestarts
            opened[1].prestarted, cli.obj[:] = list(cli.obj), []
        yield opened


LOGGING_KEY = "rvforge.logging"
"""``ctx.meta`` key of the logging settings the command line gave (``verbose``...)."""


def verbose(cli: typer.Context) -> bool:
    """Whether ``-v`` was given (before or after the command)."""
    return bool(cli.meta.get(LOGGING_KEY, {}).get("verbose"))


REGISTRY_KEY = "rvforge.registry"
VALUES_KEY = "rvforge.launcher-values"


class LauncherFlagsCommand(TyperCommand):
    """A command taking, besides its own parameters, one flag per option the installed
    launchers declare for it (:func:`rvforge.launching.launcher_flags`). The flags are
    derived when the command line is parsed, after the global options set up logging, from
    the registry the command then uses; their values reach the function through
    :func:`launcher_values`."""

    launch_command: ClassVar[str]

    def get_params(self, ctx: Any) -> list[Any]:
        own = super().get_params(ctx)
        count = len(self.params)
        return [*own[:count], *self._derived(ctx), *own[count:]]

    def invoke(self, ctx: Any) -> Any:
        names = [param.name for param in self._derived(ctx)]
        ctx.meta[VALUES_KEY] = {name: ctx.params.pop(name, None) for name in names}
        return super().invoke(ctx)

    def _derived(self, ctx: Any) -> list[Any]:
        key = f"rvforge.flags.{self.launch_command}"
        if key not in ctx.meta:
            try:
                ctx.meta[REGISTRY_KEY] = load_registry()
            except RvforgeError:  # the command loads the plugins again and reports why
                ctx.meta[REGISTRY_KEY] = None
            registry = ctx.meta[REGISTRY_KEY]
            taken = {param.name for param in self.params}
            specs = [s for s in launcher_flags(registry, self.launch_command)
                     if s.name not in taken] if registry is not None else []
            ctx.meta[key] = _flag_params(specs)
        return list(ctx.meta[key])


def launcher_flags_command(command: str) -> type[TyperCommand]:
    """The :class:`LauncherFlagsCommand` class of ``command`` (``run``), for
    ``app.command(cls=...)``."""
    return type(f"{command.title()}Command", (LauncherFlagsCommand,),
                {"launch_command": command})


def launcher_values(cli: typer.Context) -> dict[str, Any]:
    """The values of a :class:`LauncherFlagsCommand`'s derived flags, by field name
    (``None``: not given)."""
    values = dict(cli.meta.get(VALUES_KEY, {}))
    return {k: (None if v is False or v == () else v) for k, v in values.items()}


def _flag_params(specs: list[OptionSpec]) -> list[Any]:
    """Click parameters for ``specs``, made by typer from a signature as for any command."""
    if not specs:
        return []
    probe = typer.Typer(add_completion=False)

    def flags(**values: Any) -> None:
        """Only its parameters are used."""

    flags.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=_flag_annotation(s)) for s in specs])
    probe.command()(flags)
    return fit_params(list(typer.main.get_command(probe).params))


_FLAG_TYPES: dict[Any, Any] = {list: list[str] | None, bool: bool, int: int | None,
                               float: float | None, Path: Path | None}


def _flag_annotation(spec: OptionSpec) -> Any:
    option = typer.Option(spec.flag, help=spec.help or None, metavar=spec.metavar or None,
                          show_default=False)
    return Annotated[_FLAG_TYPES.get(spec.kind, str | None), option]
