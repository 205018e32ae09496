"""Entry point of rvforge-qemu (group `rvforge`): registers its components."""

from __future__ import annotations
