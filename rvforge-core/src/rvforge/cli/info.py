"""``rvforge plugins`` and ``rvforge machines``: what is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rvforge.cli.common import (
    command_context,
    handle_errors,
    launcher_flags_command,
    launcher_values,
    load_registry,
)
from rvforge.cli.layout import fit_row, output_width
from rvforge.errors import RvforgeError, ToolMissingError, UsageError
from rvforge.launching import apply_launcher_settings
from rvforge.machines import AUTO_MACHINE
from rvforge.options import flag_name, option_fields
from rvforge.registry import Registry


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("machines", cls=launcher_flags_command("machines"))(machines)


@handle_errors
def plugins(
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """List every plugin: distribution, version, hooks and components."""
    if format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {format!r}")
    registry = load_registry()
    data = plugins_json(registry)
    if format == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    for plugin in data:
        where = f"{plugin['distribution']} {plugin['version']}"
        tag = " (built-in)" if plugin["builtin"] else ""
        typer.echo(f"{plugin['name']}{tag}: {where}")
        if plugin.get("error"):
            typer.echo(f"    FAILED: {plugin['error']}")
            continue
        for family, components in plugin["components"].items():
            for component in components:
                summary = f" - {component['summary']}" if component.get("summary") else ""
                typer.echo(f"    {family[:-1]} {component['name']}{summary}")
                if component.get("options"):
                    typer.echo(f"        options: {' '.join(component['options'])}")


def plugins_json(registry: Registry) -> list[dict[str, Any]]:
    result = []
    for info in registry.pm.infos.values():
        components = {
            family: [describe(registry, family, name) for name in names]
            for family, names in registry.components_of(info.name).items()
        }
        result.append({
            "name": info.name, "module": info.module, "distribution": info.distribution,
            "version": info.version, "builtin": info.builtin,
            "hooks": registry.pm.hooks_of(info.name), "components": components,
            "error": None,
        })
    for failure in registry.pm.failures:
        result.append({
            "name": failure.name, "module": failure.module,
            "distribution": failure.distribution, "version": failure.version,
            "builtin": failure.builtin, "hooks": [], "components": {},
            "error": failure.error,
        })
    return result


def describe(registry: Registry, family: str, name: str) -> dict[str, Any]:
    component = registry.families[family].get(name)
    if family == "machines":
        return {"name": name, "summary": component.summary, "launcher": component.launcher}
    data: dict[str, Any] = {"name": name, "summary": getattr(component, "summary", "")}
    options = getattr(component, "Options", None)
    if options is not None:
        data["options"] = [flag_name(f) for f in option_fields(options)]
    if family == "packers":
        data["suffixes"] = list(component.suffixes)
    return data


@handle_errors
def machines(
    cli: typer.Context,
    format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    resolve: Annotated[bool, typer.Option(help="Ask each launcher for the ISA its CPU "
                                          "implements (may run QEMU).")] = True,
    config: Annotated[Path | None, typer.Option(help="Config file with [machines.*] "
                                                "tables.")] = None,
) -> None:
    """List machine profiles: launcher, ISA, memory and CPUs, for the QEMU named first."""
    rows = []
    with command_context(config, cli=cli) as (_, ctx):
        apply_launcher_settings(ctx, launcher_values(cli), "machines")
        registry = ctx.registry
        try:
            runs_on = _host_tool(registry, registry.default_machine(), ctx)
        except ToolMissingError:
            runs_on = ""  # no QEMU here: each row says so
        for reg in registry.machines:
            machine = reg.component
            row = {"name": machine.name, "launcher": machine.launcher, "isa": machine.isa,
                   "memory_mb": machine.memory_mb, "cpus": machine.cpus,
                   "summary": machine.summary, "plugin": reg.plugin,
                   "options": dict(machine.options), "runs_on": "",
                   "source": machine.source}
            try:
                row["runs_on"] = _host_tool(registry, machine.name, ctx)
                if resolve:
                    row["isa"] = registry.resolve_machine(machine.name, None, ctx).isa
            except RvforgeError as error:  # a board's own ISA stays known (audits use it)
                row.update(isa=machine.isa or None, error=str(error))
            row["bootable"] = bool(row["runs_on"]) and "error" not in row
            rows.append(row)
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if runs_on:
        typer.echo(f"machines on {runs_on}:")
    default = registry.default_machine()
    width = output_width()
    for row in rows:
        mark = "*" if row["name"] == default else " "
        isa = row["isa"] if row.get("isa") is not None else f"(unavailable: {row['error']})"
        if row["name"] == AUTO_MACHINE:
            isa = "(picked per image)"
        lead = (f"{mark} {row['name']:<18} {row['launcher'] or '-':<10} "
                f"{row['memory_mb']:>6} MB {row['cpus']} cpus  ")
        notes = [str(row["summary"])] if row.get("summary") else []
        if row["source"]:
            notes.append(f"ISA from {row['source']}")
        if row.get("error") and row["isa"] is not None:
            notes.append(f"cannot boot here: {row['error']}")
        if row["runs_on"] and row["runs_on"] != runs_on:
            notes.append(f"runs on {row['runs_on']}")
        for line in fit_row(lead, str(isa), width, breaks="_ ") + [
                line for note in notes for line in fit_row("    ", note, width, breaks=" ,")]:
            typer.echo(line)


def _host_tool(registry: Registry, name: str, ctx: Any) -> str:
    """What runs machine ``name`` here, as its launcher says (``""`` for none)."""
    machine = registry.machines.get(name)
    if not machine.launcher or machine.launcher not in registry.launchers:
        return ""
    return registry.launchers.get(machine.launcher)().host_tool(machine, ctx)
