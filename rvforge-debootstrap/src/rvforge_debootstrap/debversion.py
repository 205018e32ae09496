"""Debian version numbers: parsing, ordering (dpkg's algorithm) and relation checks.

A version is ``[epoch:]upstream[-revision]``. Comparison follows dpkg's
``verrevcmp``: the epoch numerically, then upstream and revision piecewise, where
non-digit runs compare character by character with letters before non-letters and
``~`` before everything (even the end of the string), and digit runs compare as numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from rvforge.numbers import is_ascii_digit, is_decimal


@dataclass(frozen=True, order=False)
class Version:
    """A parsed Debian version."""

    epoch: int
    upstream: str
    revision: str

    @classmethod
    def parse(cls, text: str) -> Version:
        text = text.strip()
        epoch = 0
        if ":" in text:
            head, text = text.split(":", 1)
            if not is_decimal(head, max_digits=10):
                raise ValueError(f"bad epoch in version {text!r}")
            epoch = int(head)
        upstream, _, revision = text.rpartition("-") if "-" in text else (text, "", "")
        if not upstream:
            raise ValueError(f"empty upstream version in {text!r}")
        return cls(epoch, upstream, revision)

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


def _order(char: str) -> int:
    """dpkg's ``order()``: ``~`` first, then digits, ASCII letters, everything else."""
    if char == "~":
        return -1
    if is_ascii_digit(char):
        return 0
    if "a" <= char <= "z" or "A" <= char <= "Z":
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while ((i < len(a) and not is_ascii_digit(a[i]))
               or (j < len(b) and not is_ascii_digit(b[j]))):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and is_ascii_digit(a[i]) and j < len(b) and is_ascii_digit(b[j]):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and is_ascii_digit(a[i]):
            return 1
        if j < len(b) and is_ascii_digit(b[j]):
            return -1
        if first_diff:
            return first_diff
    return 0


def compare(a: str | Version, b: str | Version) -> int:
    """Negative, zero or positive as version ``a`` sorts before, equal to or after ``b``."""
    va = a if isinstance(a, Version) else _parse_cached(a)
    vb = b if isinstance(b, Version) else _parse_cached(b)
    if va.epoch != vb.epoch:
        return va.epoch - vb.epoch
    result = _verrevcmp(va.upstream, vb.upstream)
    if result:
        return result
    return _verrevcmp(va.revision, vb.revision)


@functools.lru_cache(maxsize=65536)
def _parse_cached(text: str) -> Version:
    return Version.parse(text)


def satisfies(version: str, relation: str, wanted: str) -> bool:
    """True when ``version`` stands in ``relation`` (``<<``, ``<=``, ``=``, ``>=``, ``>>``)
    to ``wanted``."""
    result = compare(version, wanted)
    if relation == "<<":
        return result < 0
    if relation in ("<=", "<"):
        return result <= 0
    if relation == "=":
        return result == 0
    if relation in (">=", ">"):
        return result >= 0
    if relation == ">>":
        return result > 0
    raise ValueError(f"unknown version relation {relation!r}")


sort_key = functools.cmp_to_key(compare)
"""A ``key=`` for sorting version strings in Debian order."""
