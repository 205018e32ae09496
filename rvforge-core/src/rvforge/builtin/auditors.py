"""Built-in auditors (isa, linkage, size). Being written: see issue 3."""

from __future__ import annotations
