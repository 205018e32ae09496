"""The ``rvforge`` command line.

Exit status: 0 success; 2 usage error or bad input; 3 the audit found errors; 4 the
image did not boot; 125 rvforge could not run something (a missing host tool);
``rvforge run`` exits with the guest command's status.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer import Typer

    from rvforge.cli.application import app


def main() -> None:
    """Entry point of the ``rvforge`` script."""
    if sys.argv[1:] == ["--version"]:  # what scripts ask most: no CLI to build for it
        from rvforge.cli.version import version_text

        print(version_text())
        return
    _app()()


def _app() -> Typer:
    from rvforge.cli.application import app

    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use, so that ``main`` can answer --version without it
        return _app()
    raise AttributeError(f"module 'rvforge.cli' has no attribute {name!r}")


__all__ = ["app", "main"]
