"""Alpine version ordering and constraint matching (apk-tools 2.14 semantics)."""

from __future__ import annotations

import itertools

import pytest

from rvforge_alpine import versions

ASCENDING = [
    "0.9", "1.0_alpha", "1.0_alpha2", "1.0_beta", "1.0_pre1", "1.0_rc1", "1.0_rc2", "1.0",
    "1.0-r1", "1.0-r10", "1.0_p1", "1.0a", "1.0b", "1.0.1", "1.2.01", "1.2.1", "1.10",
    "2.14.4-r0", "2.14.10-r0", "20240705-r0",
]


@pytest.mark.parametrize("lower, higher", list(itertools.pairwise(ASCENDING)))
def test_ordering(lower: str, higher: str) -> None:
    assert versions.compare(lower, higher) == -1
    assert versions.compare(higher, lower) == 1


def test_equal() -> None:
    assert versions.compare("1.36.1-r29", "1.36.1-r29") == 0


@pytest.mark.parametrize("version, op, wanted, expected", [
    ("1.36.1-r29", ">=", "1.36", True),
    ("1.36.1-r29", "<", "1.36", False),
    ("1.36.1-r29", "=", "1.36.1-r29", True),
    ("1.36.1-r29", "=", "1.36.1", False),
    ("1.36.1-r29", "~", "1.36", True),
    ("1.37.0-r0", "~", "1.36", False),
    ("3.3.2-r0", ">~", "3.3", True),
    ("3.2.9-r0", "<~", "3.3", True),
    ("3.4.0-r0", "<~", "3.3", False),
    ("1.2.5-r0", ">", "1.2.5", True),
])
def test_satisfies(version: str, op: str, wanted: str, expected: bool) -> None:
    assert versions.satisfies(version, op, wanted) is expected


@pytest.mark.parametrize("text, valid", [
    ("1.36.1-r29", True), ("3.3.2_rc1-r0", True), ("1.0_git20240101", True),
    ("20240705-r0", True), ("", False), ("abc", False), ("1.0_foo", False),
    ("1.0-x1", False), ("1.0-r1-r2", False),
])
def test_validity(text: str, valid: bool) -> None:
    assert versions.is_valid(text) is valid
