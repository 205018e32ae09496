"""Debian version ordering: dpkg's algorithm (epochs, revisions, ``~``, letters vs symbols)."""

from __future__ import annotations

import pytest

from rvforge_debootstrap.debversion import Version, compare, satisfies, sort_key

# (a, b, sign of compare(a, b)); cases from dpkg's own test suite and Debian policy 5.6.12.
CASES = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0-0", 0),
    ("0:1.0", "1.0", 0),
    ("1.0", "1.1", -1),
    ("1.9", "1.10", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~~a", "1.0~~", 1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),
    ("1.0a", "1.0+", -1),
    ("1.0+", "1.0.", -1),
    ("1:0.1", "2.0", 1),
    ("2:1.0", "10:0.1", -1),
    ("1.0-1", "1.0-2", -1),
    ("1.0-1", "1.0-1.1", -1),
    ("1.0-1~bpo1", "1.0-1", -1),
    ("2.41-12+deb13u5", "2.41-12", 1),
    ("1.0-1+b1", "1.0-1", 1),
    ("1.002", "1.2", 0),
    ("1.2.3-1", "1.2.3-a", -1),
    ("a", "b", -1),
    ("1:1.3.dfsg+really1.3.1-1", "1:1.3.dfsg-1", 1),
    ("1.0-a-1", "1.0-a-2", -1),  # the last hyphen starts the revision
]


@pytest.mark.parametrize(("a", "b", "sign"), CASES)
def test_compare(a: str, b: str, sign: int) -> None:
    result = compare(a, b)
    assert (result > 0) - (result < 0) == sign, f"compare({a!r}, {b!r}) = {result}"
    reverse = compare(b, a)
    assert (reverse > 0) - (reverse < 0) == -sign


def test_parse_parts() -> None:
    assert Version.parse("1:2.3-4-5") == Version(1, "2.3-4", "5")
    assert str(Version.parse("0:1.0")) == "1.0"
    with pytest.raises(ValueError):
        Version.parse("x:1.0")


@pytest.mark.parametrize(("version", "op", "wanted", "ok"), [
    ("2.41-12", ">=", "2.34", True),
    ("2.41-12", "<<", "2.41", False),
    ("2.41~rc1", "<<", "2.41", True),
    ("1.0", "=", "0:1.0-0", True),
    ("1.0", ">>", "1.0", False),
    ("1.0", "<=", "1.0", True),
    ("1.0", "<", "1.0", True),  # deprecated '<' means '<='
])
def test_satisfies(version: str, op: str, wanted: str, ok: bool) -> None:
    assert satisfies(version, op, wanted) is ok


def test_sort_key() -> None:
    assert sorted(["1.0", "1.0~rc1", "1:0.5", "1.0-1", "0.9"], key=sort_key) == [
        "0.9", "1.0~rc1", "1.0", "1.0-1", "1:0.5"]
