"""Machine profiles and launchers from plugins and rvforge.toml, and ISA resolution."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixture_types import RunRvforge

import rvforge
from rvforge.context import BuildContext
from rvforge.errors import DuplicateComponentError
from rvforge.plugins import PluginManager
from rvforge.registry import Registry
from rvforge.testing import registered_plugin


class ProbeLauncher(rvforge.Launcher):
    """Works out its machines' ISA from their options, as a QEMU launcher asks QEMU."""

    name = "probe"
    probes: list[str] = []

    def machine_isa(self, machine: rvforge.Machine, ctx: BuildContext) -> str:
        self.probes.append(machine.name)
        return f"rv64imafdc_{machine.options['ext']}"

    def boot(self, artifact: rvforge.Artifact, machine: rvforge.Machine, options: None,
             ctx: BuildContext) -> rvforge.BootResult:
        return rvforge.BootResult(ok=False, reason="the probe launcher boots nothing")

    def run(self, artifact: rvforge.Artifact, machine: rvforge.Machine, argv: list[str],
            options: None, ctx: BuildContext) -> rvforge.RunResult:
        return rvforge.RunResult(ok=False, reason="the probe launcher runs nothing")


PLUGIN = types.SimpleNamespace(
    rvforge_register_launchers=rvforge.hookimpl(lambda register: register(ProbeLauncher)),
    rvforge_register_machines=rvforge.hookimpl(lambda register: register(rvforge.Machine(
        "probe-vm", launcher="probe", isa="", memory_mb=4096, options={"ext": "zba"}))),
)


@pytest.fixture
def registry(rvforge_plugin_manager: PluginManager) -> Iterator[Registry]:
    with registered_plugin(rvforge_plugin_manager, PLUGIN, "probe-plugin"):
        yield Registry(rvforge_plugin_manager)


def test_machine_isa_comes_from_its_launcher(
        registry: Registry, rvforge_context: BuildContext) -> None:
    ProbeLauncher.probes.clear()
    machine = registry.resolve_machine("probe-vm", None, rvforge_context)
    assert machine.isa == "rv64imafdc_zba" and machine.memory_mb == 4096
    assert ProbeLauncher.probes == ["probe-vm"]
    assert registry.launchers.plugin_of("probe") == "probe-plugin"


def test_isa_flag_overrides_the_machine(registry: Registry, rvforge_context: BuildContext) -> None:
    ProbeLauncher.probes.clear()
    machine = registry.resolve_machine("probe-vm", "rv64gcv", rvforge_context)
    assert machine.isa.startswith("rv64") and "v" in machine.isa
    assert ProbeLauncher.probes == []


def test_without_plugins_the_fallback_machine_is_plain_rv64gc(
        rvforge_plugin_manager: PluginManager, rvforge_context: BuildContext) -> None:
    registry = Registry(rvforge_plugin_manager)
    assert registry.default_machine() == "generic-rv64gc"
    machine = registry.resolve_machine(None, None, rvforge_context)
    assert (machine.isa, machine.launcher) == ("rv64gc", "")


def test_config_machines_may_not_shadow_a_plugin_machine(registry: Registry) -> None:
    with pytest.raises(DuplicateComponentError, match="'probe-plugin' and plugin 'rvforge.toml'"):
        registry.add_machine(rvforge.Machine("probe-vm", "probe", ""))


def test_machines_command_lists_resolved_profiles(rvforge_cli: RunRvforge, tmp_path: Path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text('[machines.tiny]\nlauncher = ""\nisa = "rv64imac"\nmemory = 256\n')
    result = rvforge_cli("machines", "--format", "json", "--config", str(config), check=True)
    import json

    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["tiny"]["isa"] == "rv64imac" and rows["tiny"]["memory_mb"] == 256
    assert rows["tiny"]["plugin"] == "rvforge.toml"
    assert rows["generic-rv64gc"]["isa"] == "rv64gc"
