"""The one way rvforge reads a number from untrusted text (a mirror's index, an HTTP
header, an environment variable, a config value, an archive's header).

``str.isdigit()``, ``int()`` and the ``\\d`` of ``re`` accept far more than ``0-9``:
superscripts (``"²".isdigit()`` is true, ``int("²")`` raises), the digits of other scripts
(``int("٣")`` is 3), spaces, signs and underscores (``int(" +1_0 ")`` is 10). A
number in a file format is ASCII digits only, and bounded: these helpers accept exactly
that and say which value was wrong otherwise.
"""

from __future__ import annotations

import re

from rvforge.errors import InputError, RvforgeError

__all__ = ["ASCII_DIGITS", "is_ascii_digit", "is_decimal", "parse_decimal", "parse_mode",
           "parse_seconds"]

ASCII_DIGITS = "0123456789"
MAX_DIGITS = 20
"""Digits read at most (2**64 has 20): a longer number is refused before it is converted."""
U64_MAX = (1 << 64) - 1


def is_ascii_digit(char: str) -> bool:
    """True for ``0``…``9`` only (``str.isdigit`` is true for ``²`` and ``٣`` too)."""
    return len(char) == 1 and "0" <= char <= "9"


def is_decimal(text: str, *, max_digits: int = MAX_DIGITS) -> bool:
    """True when ``text`` is 1 to ``max_digits`` ASCII digits, nothing else."""
    return 0 < len(text) <= max_digits and all("0" <= c <= "9" for c in text)


def parse_decimal(text: str, what: str, *, maximum: int = U64_MAX, minimum: int = 0,
                  error: type[RvforgeError] = InputError) -> int:
    """``text`` (ASCII digits, at most :data:`MAX_DIGITS`) as an int in
    ``[minimum, maximum]``; else ``error`` naming ``what`` and the value."""
    if not is_decimal(text):
        raise error(f"{what} {text[:40]!r}: expected a whole number (ASCII digits only)")
    value = int(text)
    if not minimum <= value <= maximum:
        raise error(f"{what} {text!r}: expected a number from {minimum} to {maximum}")
    return value


def parse_mode(text: str, what: str, *, error: type[RvforgeError] = InputError) -> int:
    """File permissions written in octal (``644``, ``0755``, ``4755``): 1 to 4 digits
    ``0``-``7`` (``int(text, 8)`` takes ``-1``, which is 07777 once masked)."""
    if not (0 < len(text) <= 4 and all("0" <= c <= "7" for c in text)):
        raise error(f"{what} {text[:40]!r}: expected octal permissions (1 to 4 digits 0-7, "
                    "e.g. 644 or 0755)")
    return int(text, 8)


def parse_seconds(text: str, what: str, *, maximum: float,
                  error: type[RvforgeError] = InputError) -> float:
    """A positive number of seconds in ASCII (``600``, ``1.5``, ``1e3``; no sign, ``inf``
    or ``nan``), capped at ``maximum`` (a huge value means "no practical limit"); else
    ``error`` naming ``what``."""
    if _SECONDS.fullmatch(text.strip()) is None or float(text) <= 0:
        raise error(f"{what} {text[:40]!r}: expected a positive number of seconds (ASCII "
                    "digits, e.g. 600 or 1.5)")
    return min(float(text), maximum)


_SECONDS = re.compile(r"(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?")
