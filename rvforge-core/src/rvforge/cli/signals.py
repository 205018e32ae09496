"""SIGTERM and SIGHUP handled as Ctrl-C is: what ``timeout``, systemd and CI runners send
must clean up as well (no ``.part`` output, no scratch directory, no QEMU socket
directory), and the process exits 128 + the signal's number (143, 129)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def terminate_like_interrupt() -> Iterator[Callable[[], int | None]]:
    """For the ``with`` block, turn SIGTERM and SIGHUP into :class:`KeyboardInterrupt`,
    which every ``finally`` and context manager of rvforge already cleans up after; yield
    a function returning the signal received (``None`` if none). Later signals are
    ignored while the first one's cleanup runs."""
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:
            return
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in HANDLED}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
