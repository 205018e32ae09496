"""Turning settings from the CLI and ``rvforge.toml`` into a component's Options dataclass.

Values arrive as strings (CLI), or TOML scalars and lists; each dataclass field's annotation
says what it wants: ``str``, ``int``, ``float``, ``bool``, ``Path``, ``list[str]`` (a
repeatable flag) or an optional of those. A key the dataclass lacks is an error naming the
component and the keys it does take.

A field says what it is for with :func:`option` (help text, metavar, the commands that
take it as a flag); :func:`declared_options` reads those declarations back, and the CLI
and the pytest plugin derive their flags from them.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rvforge.errors import UsageError
from rvforge.userfiles import expand_user

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


LAUNCH_COMMANDS = ("boot", "run")
"""The commands a launcher option is a flag of unless it says otherwise."""


def option(help: str, *, default: Any = dataclasses.MISSING,
           default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
           metavar: str = "", commands: tuple[str, ...] = LAUNCH_COMMANDS) -> Any:
    """A dataclass field declaring one option of a component.

    :param help: one line for ``--help``.
    :param metavar: how ``--help`` names the value (``HOST:GUEST[:ro]``).
    :param commands: the CLI commands that take it as a flag (``()``: set by rvforge
        itself, never by a flag, as a launcher's ``stream``).
    """
    metadata = {"help": help, "metavar": metavar, "commands": commands}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionSpec:
    """One option a component declares: what a flag derived from it needs.

    :param name: the field's name (``gdb_port``; the flag is ``--gdb-port``).
    :param kind: ``str``, ``int``, ``float``, ``bool``, ``Path`` or ``list`` (a repeatable
        flag of strings).
    :param help: the declared help text (``""`` for a plain field).
    :param metavar: the declared value name, if any.
    :param commands: the commands taking it as a flag.
    """

    name: str
    kind: Any
    help: str = ""
    metavar: str = ""
    commands: tuple[str, ...] = LAUNCH_COMMANDS

    @property
    def flag(self) -> str:
        return flag_name(self.name)


def declared_options(cls: type) -> list[OptionSpec]:
    """The options the dataclass ``cls`` declares, in field order."""
    return [OptionSpec(name, kind, fld.metadata.get("help", ""),
                       fld.metadata.get("metavar", ""),
                       tuple(fld.metadata.get("commands", LAUNCH_COMMANDS)))
            for name, (kind, fld) in option_fields(cls).items()]


def option_fields(cls: type) -> dict[str, tuple[type, dataclasses.Field[Any]]]:
    """Each field name of ``cls`` with its base type (``Optional`` and ``list`` unwrapped
    to their ``list`` or element type) and the field itself."""
    hints = typing.get_type_hints(cls)
    result = {}
    for fld in dataclasses.fields(cls):
        result[fld.name] = (_base_type(hints[fld.name]), fld)
    return result


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def build_options(cls: type, values: Mapping[str, Any], *, owner: str) -> Any:
    """Instantiate ``cls`` from ``values``, coercing each to its field's type.

    :param owner: names the component in errors (``provider 'local'``).
    """
    fields = option_fields(cls)
    kwargs = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in fields:
            takes = ", ".join(flag_name(f) for f in fields) or "no options"
            raise UsageError(f"{owner} does not take {flag_name(name)} (it takes: {takes})")
        kind, _ = fields[name]
        kwargs[name] = _coerce(value, kind, owner, name)
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise UsageError(f"{owner}: {error}") from None
    except ValueError as error:
        raise UsageError(f"{owner}: {error}") from None


def relative_to(cls: type, values: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    """``values`` (from a config file in ``base``) with each relative path of a field
    ``cls`` declares as a ``Path`` made relative to ``base``, as other tools read their
    config files, not to the current directory."""
    fields = option_fields(cls)
    resolved = dict(values)
    for key, value in values.items():
        field_spec = fields.get(key.replace("-", "_"))
        if base is None or field_spec is None or field_spec[0] is not Path or \
                not isinstance(value, str) or value.startswith(("/", "~")) or not value:
            continue
        resolved[key] = str(base / value)
    return resolved


def parse_extra_args(cls: type, args: list[str], *, owner: str) -> dict[str, Any]:
    """Parse component-specific flags (``--variant minbase``, ``--no-verify``) against
    ``cls``'s fields into a mapping for :func:`build_options`."""
    fields = option_fields(cls)
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise UsageError(f"unexpected argument {arg!r}")
        key, eq, inline = arg[2:].partition("=")
        name = key.replace("-", "_")
        negated = False
        if name not in fields and name.startswith("no_") and name[3:] in fields:
            name, negated = name[3:], True
        if name not in fields:
            takes = ", ".join(flag_name(f) for f in fields) or "no options"
            raise UsageError(f"{owner} does not take --{key} (it takes: {takes})")
        kind, _ = fields[name]
        if kind is bool:
            values[name] = (not negated) if not eq else _coerce(inline, bool, owner, name)
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        elif i + 1 < len(args):
            value = args[i + 1]
            i += 2
        else:
            raise UsageError(f"{owner}: --{key} needs a value")
        if kind is list:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return values


def _base_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    if origin in (list, tuple) or hint in (list, tuple):
        return list
    return hint


def _coerce(value: Any, kind: Any, owner: str, name: str) -> Any:
    flag = flag_name(name)
    if value is None:
        return None
    if kind is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(item, (list, tuple, dict)) for item in items):
            raise UsageError(f"{owner}: {flag} wants a list of values, not {value!r}")
        return [str(v) for v in items]
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower() if isinstance(value, str) else ""
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f"{owner}: {flag} wants true or false, not {value!r}")
    if kind in (int, float):
        return number(value, kind, f"{owner}: {flag}")
    if isinstance(value, (list, tuple, dict)):
        raise UsageError(f"{owner}: {flag} wants one value, not {value!r}")
    if kind is Path:
        return expand_user(str(value), f"{owner}: {flag}")
    return str(value)


def number(value: Any, kind: type, where: str) -> Any:
    """``value`` (a string from the command line, or a TOML number) as a finite ``int``
    or ``float``; a boolean, a fraction for an ``int``, ``nan``, ``inf`` or anything
    else is a :class:`UsageError` naming ``where``."""
    wanted = "a number"
    if isinstance(value, bool) or isinstance(value, (list, tuple, dict)):
        raise UsageError(f"{where} wants {wanted}, not {value!r}")
    try:
        result = float(value) if kind is float or isinstance(value, float) else int(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{where} wants {wanted}, not {value!r}") from None
    if isinstance(result, float) and not math.isfinite(result):
        raise UsageError(f"{where} wants a finite number, not {value!r}")
    if kind is int and isinstance(result, float):
        if not result.is_integer():
            raise UsageError(f"{where} wants a whole number, not {value!r}")
        result = int(result)
    return result


def seconds(value: float | None, flag: str) -> float | None:
    """A duration option (``--timeout``): ``None``, or a finite number of seconds above
    zero; ``nan``, ``inf``, zero and negatives are a :class:`UsageError` naming ``flag``."""
    if value is None:
        return None
    result = number(value, float, flag)
    if result <= 0:
        raise UsageError(f"{flag} wants a number of seconds above 0, not {value!r}")
    return float(result)


def launch_limits(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (a launcher's raw option values) with ``timeout`` checked by
    :func:`seconds` and ``memory``/``cpus`` required to be whole numbers of at least 1."""
    checked = dict(values)
    if "timeout" in values:
        checked["timeout"] = seconds(values["timeout"], "--timeout")
    for key in ("memory", "cpus"):
        if values.get(key) is not None and number(values[key], int, f"--{key}") < 1:
            raise UsageError(f"--{key} wants at least 1, not {values[key]!r}")
    return checked
