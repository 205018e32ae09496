"""A pseudo-terminal for tests that drive an interactive console (``rvforge boot
--interactive``) as a person at a terminal would: a size, keys sent, output awaited."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import termios
import time


class Pty:
    """The master side of a pseudo-terminal a program runs on."""

    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.seen = self.before = b""

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, pattern: bytes, timeout: float = 240) -> re.Match[bytes]:
        """Wait for ``pattern`` (a regex) in the output after what earlier calls matched."""
        deadline = time.monotonic() + timeout
        while not (match := re.search(pattern, self.seen)):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in:\n{self.seen.decode(errors='replace')}"
            if select.select([self.master], [], [], min(left, 1.0))[0]:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # the program exited and closed the terminal
                    break
        assert match, f"no {pattern!r} in:\n{self.seen.decode(errors='replace')}"
        self.before, self.seen = self.seen[:match.start()], self.seen[match.end():]
        return match

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)
