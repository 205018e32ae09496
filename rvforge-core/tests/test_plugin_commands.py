"""``rvforge_add_commands``: plugins add commands to the CLI; one that fails or takes a
name already used is left out with a warning and the rest of the CLI keeps working."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import typer
from typer.testing import CliRunner

import rvforge.plugins
from rvforge import UsageError, hookimpl
from rvforge.cli.application import _plugin_commands
from rvforge.plugins import PluginManager
from rvforge.testing import registered_plugin


class Greeter:
    @hookimpl
    def rvforge_add_commands(self, app: typer.Typer) -> None:
        @app.command("hello")
        def hello() -> None:
            typer.echo("hi")

        group = typer.Typer()

        @group.command("refuse")
        def refuse() -> None:
            raise UsageError("that cannot be: pass --other")

        app.add_typer(group, name="greet")


class Clashing:
    @hookimpl
    def rvforge_add_commands(self, app: typer.Typer) -> None:
        app.command("extra")(lambda: None)
        app.command("build")(lambda: None)


class Broken:
    @hookimpl
    def rvforge_add_commands(self, app: typer.Typer) -> None:
        raise RuntimeError("no commands today")


def core_app() -> typer.Typer:
    app = typer.Typer()
    app.command("build")(lambda: typer.echo("core build"))
    return app


def test_plugin_commands_are_added_and_bad_ones_left_out(
        rvforge_plugin_manager: PluginManager, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(rvforge.plugins, "get_plugin_manager",
                        lambda **_: rvforge_plugin_manager)
    app = core_app()
    with registered_plugin(rvforge_plugin_manager, Greeter(), "greeter"), \
            registered_plugin(rvforge_plugin_manager, Clashing(), "clashing"), \
            registered_plugin(rvforge_plugin_manager, Broken(), "broken"):
        _plugin_commands(app)
    # Clashing's "extra" goes too: a plugin's commands come all or none
    assert sorted(c.name or "" for c in app.registered_commands) == ["build", "hello"]
    out, err = capsys.readouterr()
    assert out == ""  # warnings never on stdout, even before the options are read
    warnings = [line for line in err.splitlines() if "[warning" in line]
    assert len(warnings) == 2, err
    assert "plugin command names already used; not added" in warnings[0]
    assert "names=['build']" in warnings[0] and "plugin=clashing" in warnings[0]
    assert "plugin commands not added" in warnings[1] and "no commands today" in warnings[1]
    assert CliRunner().invoke(app, ["hello"]).output == "hi\n"
    # a group's command gets rvforge's error reporting too: one line, the error's code
    refused = CliRunner().invoke(app, ["greet", "refuse"])
    assert refused.exit_code == 2
    assert refused.output == "rvforge: error: that cannot be: pass --other\n"
    assert CliRunner().invoke(app, ["build"]).output == "core build\n"


def test_rvforge_qemu_adds_the_lava_group_through_the_hook(
        rvforge_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    shown = rvforge_cli("lava", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "job" in shown.stdout and "results" in shown.stdout
    without = rvforge_cli("lava", "--help", env={"RVFORGE_DISABLE_PLUGINS": "qemu"})
    assert without.returncode == 2
    assert "No such command 'lava'" in without.stderr
