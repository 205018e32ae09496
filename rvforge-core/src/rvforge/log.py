"""structlog configuration: readable lines on a terminal, JSON on request; always stderr.

stdout stays for command output (``--format json`` reports, ``rvforge run`` output).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import structlog

LOG_FORMATS = ("auto", "console", "json")


def log_level(*, verbose: int = 0, quiet: bool = False, command_output: bool = False
              ) -> int:
    """The lowest level shown: debug with ``verbose``, else warning when ``quiet`` or when
    the command's output is another program's (``command_output``: ``rvforge run``, whose
    stdout and stderr are the guest command's), else info."""
    if verbose and not quiet:
        return logging.DEBUG
    return logging.WARNING if quiet or command_output else logging.INFO


def configure_logging(*, verbose: int = 0, quiet: bool = False, fmt: str = "auto",
                      command_output: bool = False) -> None:
    """Set up structlog for the CLI.

    :param verbose: 0 shows info and up, 1 or more shows debug.
    :param quiet: only warnings and errors.
    :param fmt: ``console`` (colours on a terminal), ``json`` (one object per line), or
        ``auto`` (console on a terminal, else console without colours).
    :param command_output: the command prints another program's output: only warnings
        and errors unless ``verbose`` (see :func:`log_level`).
    """
    import structlog  # here, not at import: `rvforge --help` needs no logging

    level = log_level(verbose=verbose, quiet=quiet, command_output=command_output)
    tty = sys.stderr.isatty()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso" if fmt == "json" else "%H:%M:%S"),
    ]
    if fmt == "json":
        renderer: structlog.typing.Processor = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    """A logger on the current ``sys.stderr`` (looked up when the logger is made, so a
    replaced stderr, as in tests, is honoured)."""
    import structlog

    return structlog.PrintLogger(file=sys.stderr)
