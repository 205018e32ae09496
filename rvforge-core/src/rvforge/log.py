"""Logging: structlog, readable lines on a terminal, JSON on request; always stderr.

stdout stays for command output (``--format json`` reports, ``rvforge run`` output).

structlog is imported when the first line is actually written, not at start-up: it loads
rich and asyncio (0.1–0.2 s), and most runs of a command print no log line at all (a warm
``rvforge run`` says nothing unless ``-v``). Components log through :func:`get_logger`
(``ctx.log`` is one), a :class:`Logger` that drops a line below the configured level
without importing structlog and hands everything else to the structlog logger it makes
on first use.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

LOG_FORMATS = ("auto", "console", "json")
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO,
          "warning": logging.WARNING, "warn": logging.WARNING, "error": logging.ERROR,
          "exception": logging.ERROR, "critical": logging.CRITICAL, "fatal": logging.CRITICAL}
"""structlog's logging methods and their levels."""


def log_level(*, verbose: int = 0, quiet: bool = False, command_output: bool = False
              ) -> int:
    """The lowest level shown: debug with ``verbose``, else warning when ``quiet`` or when
    the command's output is another program's (``command_output``: ``rvforge run``, whose
    stdout and stderr are the guest command's), else info."""
    if verbose and not quiet:
        return logging.DEBUG
    return logging.WARNING if quiet or command_output else logging.INFO


@dataclass(frozen=True)
class LogSettings:
    """What :func:`configure_logging` asked for: the lowest level shown and the format."""

    level: int
    fmt: str


class _Pending:
    """The configuration asked for before structlog was imported. structlog's own
    configuration is process-wide; this holds it until structlog is loaded."""

    settings: LogSettings | None = None


def configure_logging(*, verbose: int = 0, quiet: bool = False, fmt: str = "auto",
                      command_output: bool = False, level: int | None = None) -> None:
    """Set up logging for the CLI: applied now if structlog is loaded, else when the
    first line at or above the level is logged.

    :param verbose: 0 shows info and up, 1 or more shows debug.
    :param quiet: only warnings and errors.
    :param fmt: ``console`` (colours on a terminal), ``json`` (one object per line), or
        ``auto`` (console on a terminal, else console without colours).
    :param command_output: the command prints another program's output: only warnings
        and errors unless ``verbose`` (see :func:`log_level`).
    :param level: the lowest level shown, instead of the one the flags give.
    """
    chosen = level if level is not None else log_level(
        verbose=verbose, quiet=quiet, command_output=command_output)
    _Pending.settings = LogSettings(chosen, fmt)
    if "structlog" in sys.modules:
        _apply_pending(force=True)


@contextmanager
def loading_plugins() -> Iterator[None]:
    """Only critical lines inside (loading the plugins before the command line is read: a
    plugin that fails to load is reported once, by the command's own registry), then
    warnings and errors until the command's options configure logging."""
    configure_logging(level=logging.CRITICAL)
    try:
        yield
    finally:
        configure_logging(quiet=True)


def get_logger(name: str = "rvforge") -> Logger:
    """The logger components log through (see :class:`Logger`)."""
    return Logger(name)


class Logger:
    """A structlog logger made on first use: ``info``/``debug``/... below the level
    :func:`configure_logging` set return at once while structlog is not yet loaded; any
    other use imports structlog (applying the pending configuration) and forwards to the
    structlog logger, so ``bind``, ``new`` and the rest behave as structlog's."""

    __slots__ = ("_name", "_context", "_real")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._real: Any = None

    def bind(self, **values: Any) -> Any:
        """A logger with ``values`` added to every line (still lazy if this one is)."""
        if self._real is not None:
            return self._real.bind(**values)
        return Logger(self._name, {**self._context, **values})

    def __getattr__(self, method: str) -> Any:
        if self._real is None:
            pending = _Pending.settings
            if (method in LEVELS and pending is not None and "structlog" not in sys.modules
                    and LEVELS[method] < pending.level):
                return _drop
            self._real = _structlog_logger(self._name).bind(**self._context)
        return getattr(self._real, method)

    def __repr__(self) -> str:
        return f"<rvforge.log.Logger {self._name!r} {'loaded' if self._real else 'lazy'}>"


def _drop(*args: Any, **kwargs: Any) -> None:
    """A line below the level: nothing to do."""


def _structlog_logger(name: str) -> Any:
    import structlog

    _apply_pending(force=False)
    return structlog.get_logger(name)


def _apply_pending(*, force: bool) -> None:
    """Configure structlog as last asked. Deferred (``force`` false), it yields to a
    configuration someone made meanwhile (a test's ``capture_logs``)."""
    import structlog

    settings, _Pending.settings = _Pending.settings, None
    if settings is None or (not force and structlog.is_configured()):
        return
    tty = sys.stderr.isatty()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso" if settings.fmt == "json" else "%H:%M:%S"),
    ]
    if settings.fmt == "json":
        renderer: structlog.typing.Processor = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=tty)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(settings.level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    """A logger on the current ``sys.stderr`` (looked up when the logger is made, so a
    replaced stderr, as in tests, is honoured)."""
    import structlog

    return structlog.PrintLogger(file=sys.stderr)
