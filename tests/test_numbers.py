"""Numbers in untrusted text are ASCII digits, bounded, read one way (:mod:`rvforge.numbers`),
and the version orderings that read digits (apk's, dpkg's) finish quickly on any Unicode:
property tests of each, and the CLI values that are numbers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rvforge import InputError, UsageError
from rvforge.cli import app
from rvforge.numbers import is_decimal, parse_decimal, parse_seconds
from rvforge.testing import assert_one_line_error

from rvforge_alpine import versions as apk_versions
from rvforge_alpine.pkginfo import Dependency
from rvforge_debootstrap import debversion
from rvforge_qemu.devices import parse_forward

PROPERTY = settings(max_examples=300, deadline=1000, derandomize=True)
"""``deadline``: each example in under a second (the apk tokenizer looped for ever)."""

DIGITISH = st.sampled_from("0123456789²³¹٣۴०१０１_+- .,eE")
VERSIONISH = st.one_of(st.text(max_size=40),
                       st.text(alphabet=st.one_of(DIGITISH, st.sampled_from("._-~:r+abpz")),
                               max_size=40))


@PROPERTY
@given(st.one_of(st.text(max_size=30), st.text(alphabet=DIGITISH, max_size=30)))
def test_the_number_reader_takes_ascii_digits_only(text: str) -> None:
    ascii_digits = 0 < len(text) <= 20 and all(c in "0123456789" for c in text)
    assert is_decimal(text) == ascii_digits
    try:
        value = parse_decimal(text, "the value")
    except InputError as error:
        assert "the value" in str(error) and "\n" not in str(error)
        assert not ascii_digits or int(text) >= 1 << 64
    else:
        assert ascii_digits and value == int(text)


@PROPERTY
@given(st.one_of(st.text(max_size=30), st.text(alphabet=DIGITISH, max_size=30)))
def test_the_seconds_reader_is_positive_finite_and_capped(text: str) -> None:
    try:
        value = parse_seconds(text, "the deadline", maximum=1e6)
    except InputError as error:
        assert "the deadline" in str(error)
    else:
        assert 0 < value <= 1e6
        assert text.strip().isascii()


@pytest.mark.parametrize("text", ["²", "1²", "٣", "１", " 1", "+1", "-1", "1_0", "0x1",
                                  "1" * 21, ""])
def test_what_int_accepts_and_a_file_format_does_not(text: str) -> None:
    with pytest.raises(InputError):
        parse_decimal(text, "x")


@PROPERTY
@given(VERSIONISH, VERSIONISH)
def test_the_apk_ordering_finishes_and_is_antisymmetric_on_any_text(a: str, b: str) -> None:
    started = time.monotonic()
    ab, ba = apk_versions.compare(a, b), apk_versions.compare(b, a)
    apk_versions.is_valid(a)
    assert ab in (-1, 0, 1) and ba in (-1, 0, 1)
    if apk_versions.is_valid(a) and apk_versions.is_valid(b):
        assert ab == -ba
    assert time.monotonic() - started < 0.5


@PROPERTY
@given(VERSIONISH, VERSIONISH)
def test_the_dpkg_ordering_finishes_and_is_antisymmetric_on_any_text(a: str, b: str) -> None:
    started = time.monotonic()
    try:
        ab, ba = debversion.compare(a, b), debversion.compare(b, a)
    except ValueError:
        return  # a malformed epoch or an empty upstream: the index reader refuses it
    assert (ab > 0) - (ab < 0) == -((ba > 0) - (ba < 0))
    assert debversion.compare(a, a) == 0
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("atom", ["a>1²", "a>=1.٣", "a~1_rc²", "a<1-r²"])
def test_an_apk_atom_with_a_non_ascii_digit_is_refused(atom: str) -> None:
    with pytest.raises(InputError, match="invalid version"):
        Dependency.parse(atom)


def test_a_long_number_compares_as_a_number_without_int() -> None:
    """``int()`` refuses more than 4300 digits; the comparison needs none."""
    big = "1" + "0" * 5000
    assert apk_versions.compare(big, "9" * 4999) == 1
    assert apk_versions.compare(f"1.{big}", f"1.{big}") == 0
    assert debversion.compare(big, "9" * 4999) > 0


@pytest.mark.parametrize("value", ["²", "1²", "-1", "1e3", "٣", "99999999999"])
def test_a_source_date_epoch_that_is_not_a_number_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_text("x")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["--quiet", "build", "--provider", "local", "--source",
                                      str(root), "-o", str(out / "image.tar"), "--no-audit",
                                      "--isa", "rv64gc"])
    completed = subprocess.CompletedProcess([], result.exit_code, result.stdout,
                                            result.stderr)
    assert_one_line_error(completed, 2, "$SOURCE_DATE_EPOCH")
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("spec", ["1²:80", "8080:٨٠", "+80:80", "080 :80", "99999999:80"])
def test_a_forward_port_that_is_not_an_ascii_number_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match="--forward"):
        parse_forward(spec)


def test_ld_so_conf_files_that_include_each_other_are_read_once(tmp_path: Path) -> None:
    """Twelve files that each include the whole directory: once ~N^8 work (70 s at N=6)."""
    root = tmp_path / "root"
    conf = root / "etc" / "ld.so.conf.d"
    conf.mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    for index in range(12):
        (conf / f"{index}.conf").write_text(f"include *.conf\n/opt/lib{index}\n")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["--quiet", "audit", str(root), "--isa", "rv64gc"])
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started < 10
