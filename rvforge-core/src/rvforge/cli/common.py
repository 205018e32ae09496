"""What every command shares: error reporting, the registry, machine resolution."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from rvforge.errors import ExitCode, RvforgeError
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


def with_qemu(plugin_settings: dict[str, Any], qemu: Path | None) -> dict[str, Any]:
    """The config's ``[plugin.*]`` settings with ``--qemu PATH`` as ``[plugin.qemu] binary``
    (rvforge-qemu reads it from ``ctx.settings``)."""
    if qemu is None:
        return plugin_settings
    table = plugin_settings.get("qemu")
    return {**plugin_settings, "qemu": {**(table if isinstance(table, dict) else {}),
                                        "binary": str(qemu)}}


QEMU_HELP = ("The qemu-system-riscv64 binary (default: $RVFORGE_QEMU, else the one on PATH; "
             "a machine profile's qemu = \"...\" wins).")

