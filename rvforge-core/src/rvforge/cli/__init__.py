"""The ``rvforge`` command line.

Exit status: 0 success; 2 usage error or bad input; 3 the audit found errors; 4 the
image did not boot; 125 rvforge could not run something (a missing host tool);
``rvforge run`` exits with the guest command's status.
"""

from __future__ import annotations

from rvforge.cli.app import app


def main() -> None:
    """Entry point of the ``rvforge`` script."""
    app()


__all__ = ["app", "main"]
