"""``rvforge.toml``: the same settings as the CLI, which overrides them.

.. code-block:: toml

    [build]
    provider = "alpine"            # --provider
    output = "build/alpine.cpio.gz"  # -o
    packer = "cpio"                # --packer (default: from the output suffix)
    machine = "qemu-virt"          # --machine
    isa = "rv64gc"                 # --isa (overrides the machine's ISA for the audit)
    audit = "enforce"              # enforce | warn-only | off
    auditors = ["isa", "linkage", "size"]   # default: all
    deep = false                   # --deep
    init = true                    # --init/--no-init (default: add /init if missing)

    [provider]                     # options of the chosen provider
    release = "3.20"
    package = ["python3"]

    [[overlay]]                    # overlays, in order (before any --overlay)
    name = "dir"
    source = "payload"
    dest = "/opt/payload"

    [machines.big]                 # a user-defined machine profile
    launcher = "qemu-virt"
    isa = ""                       # empty: the launcher asks QEMU
    memory = 8192
    cpus = 4
    cpu = "rv64,v=true,vlen=256,elen=64"

    [plugin.NAME]                  # free-form settings a plugin reads from ctx.settings
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rvforge.errors import UsageError
from rvforge.machines import Machine

CONFIG_NAME = "rvforge.toml"

_TOP_KEYS = {"build", "provider", "overlay", "machines", "plugin"}
_BUILD_KEYS = {"provider", "output", "packer", "machine", "isa", "audit", "auditors", "deep",
               "init"}
_MACHINE_KEYS = {"launcher", "isa", "memory", "cpus", "summary"}
AUDIT_MODES = ("enforce", "warn-only", "off")


@dataclass
class Config:
    """A parsed ``rvforge.toml`` (all parts optional)."""

    path: Path | None = None
    build: dict[str, Any] = field(default_factory=dict)
    provider: dict[str, Any] = field(default_factory=dict)
    overlays: list[dict[str, Any]] = field(default_factory=list)
    machines: list[Machine] = field(default_factory=list)
    plugins: dict[str, Any] = field(default_factory=dict)


def load_config(path: Path | None) -> Config:
    """Read ``path``, or ``./rvforge.toml`` when ``path`` is ``None`` and it exists."""
    if path is None:
        default = Path(CONFIG_NAME)
        if not default.is_file():
            return Config()
        path = default
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise UsageError(f"{path}: config file not found (check --config)") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a config file") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    return parse_config(data, Path(path))


def parse_config(data: dict[str, Any], path: Path) -> Config:
    where = str(path)
    _only(data, _TOP_KEYS, where)
    build = _table(data, "build", where)
    _only(build, _BUILD_KEYS, f"{where} [build]")
    if "audit" in build and build["audit"] not in AUDIT_MODES:
        raise UsageError(f"{where}: [build] audit must be one of {', '.join(AUDIT_MODES)}")
    overlays = data.get("overlay", [])
    if not isinstance(overlays, list) or not all(isinstance(o, dict) for o in overlays):
        raise UsageError(f"{where}: 'overlay' must be an array of tables ([[overlay]])")
    for index, overlay in enumerate(overlays):
        if not isinstance(overlay.get("name"), str):
            raise UsageError(f"{where}: [[overlay]] number {index + 1} needs name = \"...\"")
    machines = [
        _machine(name, table, where) for name, table in _table(data, "machines", where).items()
    ]
    return Config(path, build, _table(data, "provider", where), overlays, machines,
                  _table(data, "plugin", where))


def _machine(name: str, table: Any, where: str) -> Machine:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [machines.{name}] must be a table")
    options = {k: v for k, v in table.items() if k not in _MACHINE_KEYS}
    try:
        return Machine(
            name=name,
            launcher=str(table.get("launcher", "qemu-virt")),
            isa=str(table.get("isa", "")),
            memory_mb=int(table.get("memory", 2048)),
            cpus=int(table["cpus"] if "cpus" in table else table.get("smp", 2)),
            summary=str(table.get("summary", f"user-defined in {where}")),
            options=options,
        )
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: [machines.{name}]: {error}") from None


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: '{key}' must be a table ([{key}])")
    return value


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UsageError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
