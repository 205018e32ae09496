"""rvforge's loggers load structlog only to write a line: a command that logs nothing
(a warm ``rvforge run`` without ``-v``) never pays for structlog, rich and asyncio."""

from __future__ import annotations

import json
import subprocess
import sys

from structlog.testing import capture_logs

from rvforge.log import Logger, get_logger


def probe(code: str) -> tuple[list[str], list[str]]:
    """stdout and stderr lines of ``code`` run in a fresh interpreter that imported
    ``configure_logging`` and ``get_logger``."""
    result = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom rvforge.log import configure_logging, "
                               f"get_logger\n{code}"],
        capture_output=True, text=True, check=True)
    return result.stdout.splitlines(), result.stderr.splitlines()


def test_lines_below_the_level_do_not_load_structlog_and_the_first_shown_line_does() -> None:
    out, err = probe(
        "configure_logging(quiet=True, fmt='json')\n"
        "log = get_logger('rvforge.test').bind(run=7)\n"
        "log.info('hidden', n=1); log.debug('hidden too')\n"
        "print('after info:', 'structlog' in sys.modules, 'rich' in sys.modules)\n"
        "log.warning('shown', n=2)\n"
        "print('after warning:', 'structlog' in sys.modules)\n"
        "log.info('still hidden')\n")
    assert out == ["after info: False False", "after warning: True"]
    assert len(err) == 1, err
    line = json.loads(err[0])
    assert (line["event"], line["n"], line["run"], line["level"]) == ("shown", 2, 7, "warning")


def test_without_configuration_every_line_goes_to_structlog_as_before() -> None:
    """An API user who configured nothing gets structlog's defaults (debug shown, on
    stdout)."""
    out, _ = probe("get_logger().debug('from the api')\n")
    assert len(out) == 1 and "[debug    ] from the api" in out[0], out


def test_a_configuration_made_after_ours_wins_when_structlog_loads() -> None:
    """``configure_logging`` before structlog is loaded, then a test's ``capture_logs``
    (which configures structlog itself): the line is captured, not printed."""
    out, err = probe(
        "configure_logging(fmt='json')\n"
        "from structlog.testing import capture_logs\n"
        "with capture_logs() as logs:\n"
        "    get_logger().info('captured', n=3)\n"
        "print(logs)\n")
    assert out == ["[{'n': 3, 'event': 'captured', 'log_level': 'info'}]"]
    assert err == []


def test_unknown_attributes_are_structlogs() -> None:
    """Anything besides the level methods is the structlog logger's (here structlog is
    loaded already, as in every test process)."""
    log = get_logger("rvforge.test")
    assert isinstance(log, Logger)
    with capture_logs() as logs:
        log.bind(a=1).new(b=2).info("fresh context")
    assert logs == [{"b": 2, "event": "fresh context", "log_level": "info"}]


def test_with_structlog_loaded_the_configuration_applies_at_once() -> None:
    """Loggers made with structlog itself (a plugin's) follow ``configure_logging`` too."""
    _, err = probe(
        "import structlog\n"
        "configure_logging(quiet=True, fmt='json')\n"
        "structlog.get_logger().info('hidden')\n"
        "structlog.get_logger().warning('shown')\n")
    assert [json.loads(line)["event"] for line in err] == ["shown"]
