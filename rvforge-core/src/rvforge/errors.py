"""Errors rvforge expects, each carrying the exit code the CLI turns it into.

Every expected failure is an :class:`RvforgeError`: the CLI prints ``str(error)`` as one
line on stderr (no traceback unless ``--debug``) and exits with ``error.exit_code``.
Messages name the thing that is wrong and, where there is one, the fix.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The process exit codes of the ``rvforge`` command (documented in ``--help``)."""

    OK = 0
    USAGE = 2
    """Usage error or bad input: unknown plugin, unreadable source, malformed archive,
    escaping path, bad config, checksum mismatch."""
    AUDIT = 3
    """The audit found errors."""
    BOOT = 4
    """The image did not boot: timeout, kernel panic, or no ready marker."""
    TOOL = 125
    """rvforge itself could not run something (a missing host tool, firmware, ...)."""


class RvforgeError(Exception):
    """Base class of every error rvforge reports without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(RvforgeError):
    """The command line, the config or an option value is wrong."""


class InputError(RvforgeError):
    """An input (source, archive, file, download) is unreadable or malformed."""


class UnsafePathError(InputError):
    """A member name or link would leave the root filesystem."""


class ChecksumMismatchError(InputError):
    """A downloaded or supplied file does not match its expected digest."""

    def __init__(self, name: str, algorithm: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{name}: {algorithm} mismatch: expected {expected}, got {actual}; "
            "the file is corrupt or was tampered with (nothing was kept)"
        )
        self.name = name
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual


class UnbootableImageError(InputError):
    """An image whose ``/init`` cannot start (missing, not executable, not RISC-V, its
    interpreter missing): found on the host before booting it."""


class PluginError(RvforgeError):
    """A plugin failed to load, or two plugins clash."""


class UnknownComponentError(UsageError):
    """A component name (provider, packer, machine, ...) that no plugin registers."""

    def __init__(self, family: str, name: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {family} {name!r} (known: {known_text}){hint}")
        self.family = family
        self.name = name
        self.known = known


class DuplicateComponentError(PluginError):
    """Two plugins register a component of the same family under the same name."""


class AuditFailedError(RvforgeError):
    """The audit found error findings and the build was stopped before packing."""

    exit_code = ExitCode.AUDIT


class BootFailedError(RvforgeError):
    """The guest did not come up (timeout, panic, no ready marker)."""

    exit_code = ExitCode.BOOT


class ToolMissingError(RvforgeError):
    """A host program or file rvforge needs is missing; the message says how to install it."""

    exit_code = ExitCode.TOOL
