"""Entry point of rvforge-alpine (group `rvforge`): registers its components."""

from __future__ import annotations
