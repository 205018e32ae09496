"""Machine profiles and launchers from plugins and rvforge.toml, and ISA resolution."""

from __future__ import annotations

import types

import pytest

import rvforge
from rvforge.errors import DuplicateComponentError
from rvforge.registry import Registry
from rvforge.testing import registered_plugin


class ProbeLauncher(rvforge.Launcher):
    """Works out its machines' ISA from their options, as a QEMU launcher asks QEMU."""

    name = "probe"
    probes: list[str] = []

    def machine_isa(self, machine, ctx) -> str:
        self.probes.append(machine.name)
        return f"rv64imafdc_{machine.options['ext']}"

    def boot(self, artifact, machine, options, ctx) -> rvforge.BootResult:
        return rvforge.BootResult(ok=False, reason="the probe launcher boots nothing")

    def run(self, artifact, machine, argv, options, ctx) -> rvforge.RunResult:
        return rvforge.RunResult(ok=False, reason="the probe launcher runs nothing")


PLUGIN = types.SimpleNamespace(
    rvforge_register_launchers=rvforge.hookimpl(lambda register: register(ProbeLauncher)),
    rvforge_register_machines=rvforge.hookimpl(lambda register: register(rvforge.Machine(
        "probe-vm", launcher="probe", isa="", memory_mb=4096, options={"ext": "zba"}))),
)


@pytest.fixture
def registry(rvforge_plugin_manager):
    with registered_plugin(rvforge_plugin_manager, PLUGIN, "probe-plugin"):
        yield Registry(rvforge_plugin_manager)


def test_machine_isa_comes_from_its_launcher(registry, rvforge_context) -> None:
    ProbeLauncher.probes.clear()
    machine = registry.resolve_machine("probe-vm", None, rvforge_context)
    assert machine.isa == "rv64imafdc_zba" and machine.memory_mb == 4096
    assert ProbeLauncher.probes == ["probe-vm"]
    assert registry.launchers.plugin_of("probe") == "probe-plugin"


def test_isa_flag_overrides_the_machine(registry, rvforge_context) -> None:
    ProbeLauncher.probes.clear()
    machine = registry.resolve_machine("probe-vm", "rv64gcv", rvforge_context)
    assert machine.isa.startswith("rv64") and "v" in machine.isa
    assert ProbeLauncher.probes == []


def test_without_plugins_the_fallback_machine_is_plain_rv64gc(rvforge_plugin_manager,
                                                               rvforge_context) -> None:
    registry = Registry(rvforge_plugin_manager)
    assert registry.default_machine() == "generic-rv64gc"
    machine = registry.resolve_machine(None, None, rvforge_context)
    assert (machine.isa, machine.launcher) == ("rv64gc", "")


def test_config_machines_may_not_shadow_a_plugin_machine(registry) -> None:
    with pytest.raises(DuplicateComponentError, match="'probe-plugin' and plugin 'rvforge.toml'"):
        registry.add_machine(rvforge.Machine("probe-vm", "probe", ""))


def test_machines_command_lists_resolved_profiles(rvforge_cli, tmp_path) -> None:
    config = tmp_path / "rvforge.toml"
    config.write_text('[machines.tiny]\nlauncher = ""\nisa = "rv64imac"\nmemory = 256\n')
    result = rvforge_cli("machines", "--format", "json", "--config", str(config), check=True)
    import json

    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["tiny"]["isa"] == "rv64imac" and rows["tiny"]["memory_mb"] == 256
    assert rows["tiny"]["plugin"] == "rvforge.toml"
    assert rows["generic-rv64gc"]["isa"] == "rv64gc"
