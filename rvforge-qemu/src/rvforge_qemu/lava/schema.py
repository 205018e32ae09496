"""Check a job against LAVA's own schema (``lava_common.schemas.validate``).

lava-common is a Debian package of the system's Python (it is not on PyPI), so the check
runs in that interpreter, in a subprocess: the one ``lava-run``'s ``#!`` line names, else
``/usr/bin/python3``. rvforge's environment stays free of it, and a job is checked by the
same schema code as the dispatcher that will run it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from rvforge import InputError, ToolMissingError

SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "sudo apt-get install --no-install-recommends lava-common"
MISSING_STATUS = 3
_CHECK = """
import sys
try:
    import yaml
    from lava_common.schemas import validate
except ImportError as error:
    print(error)
    sys.exit(3)
try:
    validate(yaml.safe_load(sys.stdin))
except Exception as error:
    print(str(error).replace(chr(10), " "))
    sys.exit(1)
"""


def lava_python() -> str:
    """The interpreter with lava-common: ``lava-run``'s, else the system's."""
    found = shutil.which("lava-run")
    if found:
        with open(found, "rb") as script:
            first = script.readline().decode(errors="replace").strip()
        words = first[2:].split() if first.startswith("#!") else []
        if words and Path(words[0]).name.startswith("python") and Path(words[0]).is_file():
            return words[0]
    return SYSTEM_PYTHON


def validate_job(text: str, name: str) -> None:
    """Check the job ``text`` (YAML, one job) against LAVA's schema.

    :raises ToolMissingError: (exit 125) lava-common is not installed.
    :raises InputError: the job is invalid, with LAVA's message.
    """
    python = lava_python()
    try:
        done = subprocess.run([python, "-c", _CHECK], input=text, capture_output=True,
                              text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise ToolMissingError(f"{python} not found, so LAVA's job schema cannot be "
                               f"checked: {INSTALL_HINT}") from None
    if done.returncode == MISSING_STATUS:
        raise ToolMissingError(f"LAVA's job schema is not installed ({python}: "
                               f"{done.stdout.strip()}): {INSTALL_HINT}")
    if done.returncode != 0:
        lines = (done.stdout.strip() or done.stderr.strip() or "no reason given").splitlines()
        reason = lines[-1]
        raise InputError(f"{name}: LAVA's schema refuses the job: {reason}")
