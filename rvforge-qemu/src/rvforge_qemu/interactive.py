"""``rvforge boot --interactive``: the guest's console on this terminal, with a shell that
has a controlling terminal."""

from __future__ import annotations

import os
import sys

from rvforge.protocol import COLS_ARGUMENT, ROWS_ARGUMENT, SHELL_ARGUMENT


def interactive_words() -> list[str]:
    """Kernel command-line words asking ``/init`` for a shell sized like this terminal."""
    words = [SHELL_ARGUMENT]
    try:
        size = os.get_terminal_size(sys.stdin.fileno())
    except (OSError, ValueError):
        return words
    if size.lines and size.columns:
        words += [f"{ROWS_ARGUMENT}{size.lines}", f"{COLS_ARGUMENT}{size.columns}"]
    return words
