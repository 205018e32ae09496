"""``rvforge exec`` without building the whole command line: a command in a kept guest
should cost the round trip, not the import of every subcommand (see :func:`quick_exec`)."""

from __future__ import annotations

import base64
import sys

from rvforge import kept
from rvforge.errors import BootFailedError, RvforgeError


def quick_exec(args: list[str]) -> int | None:
    """Run ``exec [--timeout S] [NAME] -- CMD...`` and return the exit status; ``None``
    for anything else (``--help``, a malformed line), which the full CLI then parses and
    reports."""
    if "--" not in args:
        return None
    split = args.index("--")
    names: list[str] = []
    timeout: float | None = None
    words = iter(args[:split])
    try:
        for word in words:
            if word == "--timeout":
                timeout = float(next(words))
            elif word.startswith("--timeout="):
                timeout = float(word.partition("=")[2])
            elif word.startswith("-"):
                return None
            else:
                names.append(word)
    except (StopIteration, ValueError):
        return None
    if len(names) > 1 or not args[split + 1:]:
        return None
    try:
        return execute(names[0] if names else None, args[split + 1:], timeout)
    except RvforgeError as error:
        print(f"rvforge: error: {error}", file=sys.stderr)
        return int(error.exit_code)


def execute(name: str | None, argv: list[str], timeout: float | None) -> int:
    """Run ``argv`` in the kept guest ``name``, copy its output to ours as it comes,
    return its status (as ``rvforge run`` does)."""
    directory = kept.runtime_dir()
    record = kept.find(directory, name)
    answer = kept.request(directory, record.name, {"op": "exec", "argv": argv,
                                                   "timeout": timeout}, output=_show)
    _show("out", base64.b64decode(answer.get("stdout") or ""))
    _show("err", base64.b64decode(answer.get("stderr") or ""))
    for line in answer.get("diagnosis") or []:
        print(f"rvforge: {line}", file=sys.stderr)
    sys.stderr.flush()
    status = answer.get("status")
    if not isinstance(status, int):
        raise BootFailedError(f"the command did not finish in guest {record.name!r}: "
                              f"{answer.get('reason') or 'no status'}")
    return status


def _show(stream: str, data: bytes) -> None:
    """Write a chunk of the command's output to our stdout (``out``) or stderr now."""
    target = sys.stdout if stream == "out" else sys.stderr
    target.buffer.write(data)
    target.flush()
