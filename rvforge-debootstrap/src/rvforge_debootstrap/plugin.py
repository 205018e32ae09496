"""Entry point of rvforge-debootstrap (group `rvforge`): registers its components."""

from __future__ import annotations
