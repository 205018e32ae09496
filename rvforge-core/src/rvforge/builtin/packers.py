"""Built-in packers (cpio, tar, ext4). Being written: see issue 2."""

from __future__ import annotations
