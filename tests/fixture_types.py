"""Types of the root conftest's fixtures, for the tests' annotations (tests/ is on the tests'
import path: ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol


class RiscvCC(Protocol):
    """``riscv_cc``: compile C (or assembly) for riscv64."""

    def __call__(self, source: str, name: str, *flags: str, suffix: str = ".c") -> Path: ...

    def program(self, program_name: str, name: str, *flags: str) -> Path:
        """Compile one of the shared programs of tests/data/programs."""
        ...


class RunRvforge(Protocol):
    """``rvforge_cli``: run ``rvforge`` (a subprocess, or in-process where a module says so)."""

    def __call__(self, *args: str, check: bool = False, env: dict[str, str] | None = None,
                 **kwargs: Any) -> subprocess.CompletedProcess[str]: ...
