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
from rvforge.userfiles import read_regular

CONFIG_NAME = "rvforge.toml"

_TOP_KEYS = {"build", "provider", "overlay", "machines", "plugin"}
_BUILD_KEYS = {"provider", "output", "packer", "machine", "isa", "audit", "auditors", "deep",
               "init"}
_MACHINE_KEYS = {"launcher", "isa", "memory", "cpus", "summary", "source"}
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

    @property
    def base(self) -> Path | None:
        """The directory relative paths in the file are relative to (the file's own)."""
        return self.path.parent if self.path is not None else None


def load_config(path: Path | None) -> Config:
    """Read ``path``, or ``./rvforge.toml`` when ``path`` is ``None`` and it exists.

    Anything wrong with the file (not a regular file, larger than :data:`MAX_SIZE`, not
    UTF-8, not TOML, nested deeper than the parser's recursion allows, a value of the wrong
    type or range) is a :class:`UsageError` naming the file and the key."""
    if path is None:
        default = Path(CONFIG_NAME)
        if not default.is_file():
            return Config()
        path = default
    text = _read_text(Path(path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid TOML: values nested too deeply") from None
    return parse_config(data, Path(path))


MAX_SIZE = 1 << 20
"""Bytes of the longest config file read (a config is a few hundred)."""


def _read_text(path: Path) -> str:
    """The text of the config file ``path``; refuses what is not a regular UTF-8 file of at
    most :data:`MAX_SIZE` bytes (a FIFO would block forever)."""
    data = read_regular(path, "config file", MAX_SIZE, hint="give --config a TOML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: not UTF-8 (byte {error.start})") from None


_BUILD_TYPES: dict[str, tuple[type, str]] = {
    "provider": (str, "a string"), "output": (str, "a string (a path)"),
    "packer": (str, "a string"), "machine": (str, "a string"), "isa": (str, "a string"),
    "audit": (str, "a string"), "auditors": (list, "an array of strings"),
    "deep": (bool, "true or false"), "init": (bool, "true or false"),
}


def parse_config(data: dict[str, Any], path: Path) -> Config:
    where = str(path)
    _only(data, _TOP_KEYS, where)
    build = _table(data, "build", where)
    _only(build, _BUILD_KEYS, f"{where} [build]")
    for key, value in build.items():
        kind, wanted = _BUILD_TYPES[key]
        if not isinstance(value, kind) or (isinstance(value, list) and not all(
                isinstance(item, str) for item in value)):
            raise UsageError(f"{where}: [build] {key} must be {wanted}, not {value!r}")
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
    here = f"{where}: [machines.{name}]"
    texts = {key: table[key] for key in ("launcher", "isa", "summary", "source")
             if key in table}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise UsageError(f"{here} {key} must be a string, not {value!r}")
    return Machine(
        name=name,
        launcher=texts.get("launcher", "qemu-virt"),
        isa=texts.get("isa", ""),
        memory_mb=_count(table, "memory", 2048, here, "MiB"),
        cpus=_count(table, "cpus" if "cpus" in table else "smp", 2, here, "CPUs"),
        summary=texts.get("summary", f"user-defined in {where}"),
        options=options,
        source=texts.get("source", ""),
    )


def _count(table: dict[str, Any], key: str, default: int, here: str, unit: str) -> int:
    """``table[key]``, a TOML integer of at least 1 (not a float, string or boolean)."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise UsageError(f"{here} {key} must be a whole number of {unit} from 1 to "
                         f"{MAX_COUNT}, not {value!r}")
    return value


MAX_COUNT = 1 << 24
"""Largest memory (MiB) or CPU count a machine table may ask for."""


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
