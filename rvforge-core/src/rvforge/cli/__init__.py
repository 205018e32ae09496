"""The ``rvforge`` command line.

Exit status: 0 success; 2 usage error or bad input; 3 the audit found errors; 4 the
image did not boot; 125 rvforge could not run something (a missing host tool);
``rvforge run`` exits with the guest command's status; SIGINT, SIGTERM and SIGHUP
clean up and exit 130, 143 and 129.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

from rvforge.prestart import Prestart, prestart

if TYPE_CHECKING:
    from typer import Typer

    from rvforge.cli.application import app


def main() -> None:
    """Entry point of the ``rvforge`` script."""
    if sys.argv[1:] == ["--version"]:  # what scripts ask most: no CLI to build for it
        from rvforge.cli.version import version_text

        print(version_text())
        return
    if sys.argv[1:2] == ["exec"]:  # a kept guest's command: the round trip, not the CLI
        from rvforge.cli.quickexec import quick_exec

        if (status := quick_exec(sys.argv[2:])) is not None:
            sys.exit(status)
    from rvforge.cli.signals import terminate_like_interrupt

    # start-up makes objects, not garbage: no collections until the command runs
    # (handle_errors enables them), about 7% of importing and parsing
    gc.disable()
    prestarted: list[Prestart] = []
    with terminate_like_interrupt() as received:
        try:
            prestarted = prestart(sys.argv[1:])
            sys.exit(_run(_app(), prestarted))
        except KeyboardInterrupt:  # before click runs: while the CLI is still importing
            print("rvforge: interrupted", file=sys.stderr)
            raise SystemExit(128 + (received() or 2)) from None
        except SystemExit:
            if (signum := received()) is not None:
                raise SystemExit(128 + signum) from None
            raise
        finally:
            for handle in prestarted:  # the command took none of them
                handle.close()


def _run(app: Typer, prestarted: list[Prestart]) -> int:
    """Run ``app`` on ``sys.argv``; return the exit status. A usage error of the command
    line (a missing argument, an unknown option) is one ``rvforge: error:`` line, exit 2,
    as every other error is, instead of click's framed block. ``prestarted`` reaches the
    command's context (:func:`rvforge.cli.common.command_context`) as the click context's
    object."""
    import typer.main

    try:
        status = typer.main.get_command(app).main(prog_name="rvforge",
                                                  standalone_mode=False, obj=prestarted)
    except typer.TyperException as error:  # typer's vendored click errors derive from it
        if isinstance(error, _no_args_is_help_error()):  # `rvforge` alone: the help text
            error.show()  # type: ignore[attr-defined]
            return error.exit_code
        ctx = getattr(error, "ctx", None)  # a usage error knows its command
        where = ctx.command_path if ctx is not None else "rvforge"
        print(f"rvforge: error: {error.format_message()} (see '{where} --help')",
              file=sys.stderr)
        return error.exit_code
    except typer.Abort:
        print("rvforge: interrupted", file=sys.stderr)
        return 130
    return status if isinstance(status, int) else 0


def _no_args_is_help_error() -> type[Exception]:
    """The error typer raises for a command group called without a subcommand, which asks
    for the help text, not an error line. typer exports no name for it (its public
    ``TyperException`` is the base of every usage error): this is the one private reach,
    and tests/test_cli.py's test of it fails when a typer release moves it."""
    from typer._click.exceptions import NoArgsIsHelpError

    return NoArgsIsHelpError


def _app() -> Typer:
    from rvforge.cli.application import app

    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use, so that ``main`` can answer --version without it
        return _app()
    raise AttributeError(f"module 'rvforge.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
