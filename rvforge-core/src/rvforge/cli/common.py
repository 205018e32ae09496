"""What every command shares: error reporting, the config, registry and context every
command starts from, the flags derived from the installed launchers' declarations."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rvforge.config import Config, load_config
from rvforge.context import BuildContext
from rvforge.errors import ExitCode, RvforgeError
from rvforge.launching import launcher_flags
from rvforge.options import OptionSpec
from rvforge.registry import Registry, build_registry

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn expected errors into one line on stderr and their exit code (no traceback
    unless ``--debug``); Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = _debug()
        try:
            return func(*args, **kwargs)
        except RvforgeError as error:
            if debug:
                traceback.print_exc()
            typer.echo(f"rvforge: error: {error}", err=True)
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


def _debug() -> bool:
    """``--debug`` (which sets ``RVFORGE_DEBUG``) or ``RVFORGE_DEBUG=1``."""
    return os.environ.get("RVFORGE_DEBUG", "") not in ("", "0")


def load_registry() -> Registry:
    return build_registry()


@contextmanager
def command_context(config: Path | None = None, *, offline: bool = False,
                    deep: bool = False) -> Iterator[tuple[Config, BuildContext]]:
    """What most commands start with: the config (``--config``, else ``./rvforge.toml``),
    the registry with the config's machine profiles added, and a context for the work."""
    settings = load_config(config)
    registry = load_registry()
    for profile in settings.machines:
        registry.add_machine(profile)
    with BuildContext(registry, offline=offline, deep=deep,
                      settings=dict(settings.plugins)) as ctx:
        yield settings, ctx


def launcher_declarations() -> Registry | None:
    """The installed plugins' registry, to derive launcher flags from when the commands
    are built; ``None`` when loading fails (the command then reports why)."""
    try:
        return load_registry()
    except RvforgeError:
        return None


def with_launcher_flags(func: F, registry: Registry | None, command: str) -> F:
    """``func`` taking, besides its own parameters, one flag per option the installed
    launchers declare for ``command`` (:func:`rvforge.launching.launcher_flags`); their
    values reach it as ``launcher_values`` (field name → value, ``None``: not given)."""
    specs = launcher_flags(registry, command) if registry is not None else []
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "launcher_values"]
    taken = {p.name for p in own}
    specs = [s for s in specs if s.name not in taken]
    derived = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=_flag_annotation(s)) for s in specs]
    names = [s.name for s in specs]

    def command_function(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return func(**kwargs, launcher_values=values)

    command_function.__name__ = func.__name__
    command_function.__doc__ = func.__doc__
    command_function.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own),
                    *derived])
    return command_function  # type: ignore[return-value]


_FLAG_TYPES: dict[Any, Any] = {list: list[str] | None, bool: bool | None, int: int | None,
                               float: float | None, Path: Path | None}


def _flag_annotation(spec: OptionSpec) -> Any:
    option = typer.Option(spec.flag, help=spec.help or None, metavar=spec.metavar or None,
                          show_default=False)
    return Annotated[_FLAG_TYPES.get(spec.kind, str | None), option]
