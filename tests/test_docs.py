"""Meta-tests that keep the plugin documentation and tests honest (as datasette's
test_docs.py does): every hook is documented in docs/plugins.md, fully described in its
docstring, and implemented by at least one test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from rvforge import hookspecs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if name.startswith("rvforge_") and callable(obj))
TEST_FILES = [p for p in ROOT.glob("**/tests/**/*.py")
              if ".venv" not in p.parts and p.name != "test_docs.py"]


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 10


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_in_the_plugin_guide(hook: str) -> None:
    assert re.search(rf"^#### `{hook}\(", GUIDE, re.MULTILINE), (
        f"docs/plugins.md has no '#### `{hook}(...)`' section")


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_docstring_is_complete(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for part in (":param", "Results:", "versionadded", "alled"):
        assert part in doc, f"{hook}'s docstring lacks {part!r}"
    params = inspect.signature(getattr(hookspecs, hook)).parameters
    for name in params:
        assert f":param {name}:" in doc, f"{hook}'s docstring does not describe {name!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook: str) -> None:
    users = [p for p in TEST_FILES if hook in p.read_text()]
    assert users, f"no test implements {hook}"


def test_every_documented_hook_exists() -> None:
    documented = set(re.findall(r"^#### `(rvforge_\w+)\(", GUIDE, re.MULTILINE))
    assert documented == set(HOOKS)
