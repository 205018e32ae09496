"""Reading LAVA's output back: real ``lava-run`` logs (kept from runs of ``rvforge lava
run`` on this machine under QEMU 7.2 and Debian's kernel), the same results in the shapes a
LAVA server gives them (``lavacli results --yaml``, JUnit), and arbitrary input, which is a
lab's data and must never crash the reader."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rvforge import InputError

from rvforge_qemu.lava.results import LavaRun, parse, record_of

DATA = Path(__file__).parent / "data" / "lava"
EXIT_3 = DATA / "exit-3.log"
"""``rvforge lava run alpine.cpio.gz -- sh -c 'echo hello; echo RVFORGE-STATUS-000000000000
0; uname -m; exit 3'`` on qemu-virt."""
BOOT_FAILED = DATA / "boot-failed.log"
"""``rvforge lava run alpine.cpio.gz --append rdinit=/nonexistent -- true``: the kernel
panics before any shell."""


def log_records(path: Path) -> list[dict[str, object]]:
    return [r for line in path.read_text().splitlines() if (r := record_of(line))]


def server_results(path: Path) -> list[dict[str, object]]:
    """The log's test cases as a LAVA server lists them (``lavacli results ID --yaml``)."""
    cases = []
    for record in log_records(path):
        msg = record["msg"]
        if record["lvl"] == "results" and isinstance(msg, dict):
            cases.append({"suite": msg["definition"], "name": msg["case"],
                          "result": msg["result"], "measurement": None, "unit": "",
                          "metadata": {k: v for k, v in msg.items() if k != "extra"}})
    return cases


def junit(cases: list[dict[str, object]]) -> str:
    """The cases as LAVA's JUnit export writes them (one suite per LAVA suite)."""
    suites: dict[str, list[str]] = {}
    for case in cases:
        meta = case["metadata"]
        assert isinstance(meta, dict)
        failure = '<failure message="fail"/>' if case["result"] == "fail" else ""
        suites.setdefault(str(case["suite"]), []).append(
            f'<testcase classname={quoteattr(str(case["suite"]))} '
            f'name={quoteattr(str(case["name"]))} time="{meta.get("duration", 0)}">'
            f"{failure}</testcase>")
    body = "".join(f'<testsuite name={quoteattr(name)}>{"".join(items)}</testsuite>'
                   for name, items in suites.items())
    return f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites>{body}</testsuites>'


def test_a_real_log_gives_the_status_the_output_and_the_seconds() -> None:
    run = parse(EXIT_3.read_text(), "ignored", str(EXIT_3))
    assert (run.machine, run.result, run.status) == ("qemu-virt", "fail", 3)
    # another job's marker in the output is output, not the end of the command
    assert run.output == ("hello", "RVFORGE-STATUS-000000000000 0", "riscv64")
    assert run.seconds is not None and 2 < run.seconds < 120
    assert run.to_json() == {"machine": "qemu-virt", "status": 3,
                             "seconds": round(run.seconds, 2), "result": "fail"}


def test_a_log_of_a_failed_boot_is_incomplete_with_lavas_reason() -> None:
    run = parse(BOOT_FAILED.read_text(), "qemu-virt", str(BOOT_FAILED))
    assert (run.machine, run.result, run.status) == ("qemu-virt", "incomplete", None)
    assert run.reason == "Connection closed"


def test_a_servers_log_is_a_yaml_list_of_the_same_records() -> None:
    text = yaml.safe_dump(log_records(EXIT_3))  # `lavacli jobs logs ID --raw`
    run = parse(text, "ignored", "server.log")
    assert (run.machine, run.status, run.output[0]) == ("qemu-virt", 3, "hello")


@pytest.mark.parametrize("shape", ["yaml", "junit"])
def test_results_without_a_log_give_pass_or_fail_but_no_failed_status(shape: str) -> None:
    cases = server_results(EXIT_3)
    passed = [dict(c, result="pass") if c["name"] == "command" else c for c in cases]
    render = (lambda c: yaml.safe_dump(c)) if shape == "yaml" else junit
    failed_run = parse(render(cases), "ignored", "results")
    passed_run = parse(render(passed), "ignored", "results")
    assert (failed_run.machine, failed_run.result, failed_run.status) == (
        "qemu-virt", "fail", None)
    assert (passed_run.result, passed_run.status) == ("pass", 0)
    assert failed_run.seconds is not None and failed_run.seconds > 0


def test_results_of_a_failed_boot_are_incomplete() -> None:
    run = parse(yaml.safe_dump(server_results(BOOT_FAILED)), "qemu-virt-v", "r.yaml")
    assert (run.machine, run.result, run.status) == ("qemu-virt-v", "incomplete", None)


@pytest.mark.parametrize("text, message", [
    ("", "not a list of LAVA records"),
    ("just: a mapping\n", "not a list of LAVA records"),
    ("- {a: 1}\n", "neither a LAVA log"),
    ("<testsuites/>", "JUnit XML without test cases"),
    ("<testsuites>", "not JUnit XML"),
    ("- [unclosed\n", "not a LAVA log or YAML"),
])
def test_what_is_not_lavas_output_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(text, "m", "input.txt")


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=400),
    st.lists(st.dictionaries(st.sampled_from(["lvl", "msg", "dt", "result", "suite", "name",
                                              "case", "definition", "metadata", "duration"]),
                             st.one_of(st.text(max_size=20), st.integers(), st.none(),
                                       st.dictionaries(st.text(max_size=8),
                                                       st.text(max_size=8), max_size=3))),
             max_size=6).map(json.dumps),
    st.lists(st.text(max_size=60), max_size=8).map(
        lambda lines: "\n".join(f'{{"lvl": "target", "msg": {json.dumps(x)}}}'
                                for x in lines)),
))
def test_any_input_is_read_or_refused_with_input_error(text: str) -> None:
    try:
        run = parse(text, "m", "fuzz")
    except InputError:
        return
    assert isinstance(run, LavaRun)
    assert run.result in ("pass", "fail", "incomplete")
    json.dumps(run.to_json())
