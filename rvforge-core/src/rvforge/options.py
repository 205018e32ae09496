"""Turning settings from the CLI and ``rvforge.toml`` into a component's Options dataclass.

Values arrive as strings (CLI), or TOML scalars and lists; each dataclass field's annotation
says what it wants: ``str``, ``int``, ``float``, ``bool``, ``Path``, ``list[str]`` (a
repeatable flag) or an optional of those. A key the dataclass lacks is an error naming the
component and the keys it does take.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rvforge.errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [str(value)]
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f"{owner}: {flag} wants true or false, not {value!r}")
    if kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise UsageError(f"{owner}: {flag} wants a number, not {value!r}") from None
    if kind is Path:
        return Path(str(value)).expanduser()
    if isinstance(value, (list, dict)):
        raise UsageError(f"{owner}: {flag} wants one value, not {value!r}")
    return str(value)
