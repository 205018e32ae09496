"""What the ``rvforge_prestart`` hook is told: the command's name and a name for the
command line that the guest's own command (after ``--``) does not change."""

from __future__ import annotations

import pytest

from rvforge.prestart import command_word, invocation_digest


@pytest.mark.parametrize(("args", "word"), [
    (["run", "img", "--", "true"], "run"),
    (["-v", "--log-format", "json", "run", "img"], "run"),
    (["--log-format", "run", "boot"], "boot"),  # "run" is --log-format's value here
    (["-q", "--", "run"], None),
    (["-v"], None),
])
def test_the_command_word_skips_global_options_and_their_values(args: list[str],
                                                                word: str | None) -> None:
    assert command_word(args) == word


def test_the_command_line_name_ignores_the_guests_command_only() -> None:
    env = {"PATH": "/usr/bin", "RVFORGE_CACHE_DIR": "/c", "TERM": "xterm"}
    base = invocation_digest(["run", "img", "--", "true"], "/w", env)
    assert invocation_digest(["run", "img", "--", "echo", "hi"], "/w", env) == base
    assert invocation_digest(["run", "img", "--", "true"], "/w", {**env, "TERM": "dumb"}) \
        == base  # nothing rvforge reads
    for other in (invocation_digest(["run", "--memory", "512", "img", "--", "true"], "/w",
                                    env),
                  invocation_digest(["run", "img", "--", "true"], "/elsewhere", env),
                  invocation_digest(["run", "img", "--", "true"], "/w",
                                    {**env, "RVFORGE_CACHE_DIR": "/d"}),
                  invocation_digest(["run", "img", "--", "true"], "/w",
                                    {**env, "PATH": "/opt/qemu/bin:/usr/bin"})):
        assert other != base
