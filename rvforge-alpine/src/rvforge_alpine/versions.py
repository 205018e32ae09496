"""Alpine package versions: ordering and constraint matching exactly as apk-tools 2 does.

A version is ``1.36.1-r29``, ``3.3.2_rc1-r0``, ``20240705-r0``, ``1.0_git20240101``: dot-
separated numbers, an optional letter, ``_alpha``/``_beta``/``_pre``/``_rc`` (before the
release) or ``_cvs``/``_svn``/``_git``/``_hg``/``_p`` (after it) suffixes each with an
optional number, and a ``-rN`` package revision. :func:`compare` follows apk-tools 2.14's
``src/version.c`` token for token (a number with a leading zero compares as text, a
pre-release suffix sorts before the end of the version, a longer version after a shorter
one), so ``1.0_rc1 < 1.0 < 1.0_p1 < 1.0a < 1.0.1`` and ``1.2.01 < 1.2.1`` come out as
they do on an Alpine system.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_PRE_RELEASE = ("alpha", "beta", "pre", "rc")
_POST_RELEASE = ("cvs", "svn", "git", "hg", "p")
_SUFFIX_RANK = {name: rank for rank, name in enumerate(
    ("", *_PRE_RELEASE, "", *_POST_RELEASE)) if name}
_NO_SUFFIX = len(_PRE_RELEASE) + 1
_DIGITS = re.compile(r"[0-9]*")
_LOWER = re.compile(r"[a-z]*")


class _Kind(enum.IntEnum):
    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    REVISION_NO = 5
    END = 6
    INVALID = 7


@dataclass
class _Token:
    kind: _Kind
    text: str = ""
    suffix: int = 0


class _Reader:
    """Splits a version into apk's tokens, checking each may follow the one before."""

    def __init__(self, text: str) -> None:
        self.text = text
        digits = _DIGITS.match(text)
        value = digits.group() if digits else ""
        self.pos = len(value)
        self.token = _Token(_Kind.INITIAL_DIGIT if value else _Kind.INVALID, value)

    def advance(self) -> None:
        text, pos, previous = self.text, self.pos, self.token.kind
        if pos >= len(text):
            self.token = _Token(_Kind.END)
            return
        char = text[pos]
        token = _Token(_Kind.INVALID)
        if "a" <= char <= "z" and previous <= _Kind.DIGIT:
            token, pos = _Token(_Kind.LETTER, char), pos + 1
        elif "0" <= char <= "9" or (char == "." and previous <= _Kind.DIGIT):
            if char == ".":
                pos += 1
            value = _match(_DIGITS, text, pos)
            pos += len(value)
            if previous is _Kind.SUFFIX:
                token = _Token(_Kind.SUFFIX_NO, value)
            elif previous in (_Kind.INITIAL_DIGIT, _Kind.DIGIT):
                token = _Token(_Kind.DIGIT, value)
        elif char == "_" and previous <= _Kind.SUFFIX_NO:
            value = _match(_LOWER, text, pos + 1)
            pos += 1 + len(value)
            if value in _SUFFIX_RANK:
                token = _Token(_Kind.SUFFIX, value, _SUFFIX_RANK[value])
        elif text.startswith("-r", pos) and previous < _Kind.REVISION_NO:
            value = _match(_DIGITS, text, pos + 2)
            pos += 2 + len(value)
            token = _Token(_Kind.REVISION_NO, value)
        self.pos, self.token = pos, token


def _match(pattern: re.Pattern[str], text: str, pos: int) -> str:
    found = pattern.match(text, pos)
    return found.group() if found else ""


def _compare_tokens(a: _Token, b: _Token) -> int:
    kind = a.kind
    if kind is _Kind.DIGIT and (a.text.startswith("0") or b.text.startswith("0")):
        return (a.text > b.text) - (a.text < b.text)  # leading zero: compare as text
    if kind in (_Kind.INITIAL_DIGIT, _Kind.DIGIT, _Kind.SUFFIX_NO, _Kind.REVISION_NO):
        return _compare_numbers(a.text, b.text)
    if kind is _Kind.LETTER:
        x, y = ord(a.text), ord(b.text)
    else:
        x, y = a.suffix, b.suffix
    return (x > y) - (x < y)


def _compare_numbers(a: str, b: str) -> int:
    """Compare two ASCII digit runs as numbers without ``int()`` (which refuses more than
    4300 digits): the longer one without leading zeros is larger, else the text decides."""
    a, b = a.lstrip("0"), b.lstrip("0")
    x, y = (len(a), a), (len(b), b)
    return (x > y) - (x < y)


def compare(a: str, b: str, *, fuzzy: bool = False) -> int:
    """-1, 0 or 1 as version ``a`` sorts before, equal to or after ``b``.

    :param fuzzy: ``b`` is a prefix pattern (apk's ``~``): ``1.2.3`` equals ``1.2``.
    """
    ra, rb = _Reader(a), _Reader(b)
    while ra.token.kind == rb.token.kind and ra.token.kind < _Kind.END:
        result = _compare_tokens(ra.token, rb.token)
        if result:
            return result
        ra.advance()
        rb.advance()
    ta, tb = ra.token, rb.token
    if ta.kind == tb.kind or (fuzzy and tb.kind is _Kind.END):
        return 0
    if ta.kind is _Kind.SUFFIX and ta.suffix < _NO_SUFFIX:
        return -1
    if tb.kind is _Kind.SUFFIX and tb.suffix < _NO_SUFFIX:
        return 1
    return -1 if ta.kind > tb.kind else 1


def is_valid(version: str) -> bool:
    """True when ``version`` is well formed for apk (every token parses, ends cleanly)."""
    reader = _Reader(version)
    while reader.token.kind < _Kind.END:
        reader.advance()
    return reader.token.kind is _Kind.END


OPERATORS: dict[str, frozenset[int]] = {
    "=": frozenset({0}),
    "<": frozenset({-1}),
    "<=": frozenset({-1, 0}),
    ">": frozenset({1}),
    ">=": frozenset({1, 0}),
    "~": frozenset({0}),
    "<~": frozenset({-1, 0}),
    ">~": frozenset({1, 0}),
}
"""Each version operator and the :func:`compare` results it accepts (``~`` forms are
fuzzy). ``><`` (a checksum pin) is handled by the dependency itself."""


def satisfies(version: str, op: str, wanted: str) -> bool:
    """True when ``version`` meets the constraint ``op wanted`` (``>=``, ``1.2``)."""
    return compare(version, wanted, fuzzy="~" in op) in OPERATORS[op]
