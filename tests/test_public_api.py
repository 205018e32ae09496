"""Meta-test: plugin packages use only rvforge-core's public names, as a third party must.

Public are ``rvforge.__all__`` and the ``__all__`` of the library modules: every module of
``rvforge.formats``, ``rvforge.riscv`` and ``rvforge.net``, ``rvforge.protocol``,
``rvforge.numbers``, ``rvforge.userfiles`` and ``rvforge.testing``. Everything else
(``rvforge.registry``, ``rvforge.tree``, ``rvforge.cli``, the built-in plugins...) may change
without notice.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import rvforge

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = [ROOT / "rvforge-alpine" / "src", ROOT / "rvforge-debootstrap" / "src",
                  ROOT / "rvforge-qemu" / "src",
                  *sorted((ROOT / "tests" / "plugins").glob("*/src"))]
LIBRARY_PACKAGES = ("rvforge.formats", "rvforge.riscv", "rvforge.net")
LIBRARY_MODULES = ("rvforge.protocol", "rvforge.numbers", "rvforge.userfiles",
                   "rvforge.testing", *(
    f"{package}.{info.name}" for package in LIBRARY_PACKAGES
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__)))


def public_names() -> dict[str, set[str]]:
    """Module name → the names a plugin may import from it (submodules included)."""
    public = {module: set(getattr(importlib.import_module(module), "__all__", ()))
              for module in LIBRARY_MODULES}
    for package in LIBRARY_PACKAGES:
        public[package] = {m.rpartition(".")[2] for m in LIBRARY_MODULES
                           if m.startswith(package + ".")}
    public["rvforge"] = set(rvforge.__all__) | {
        m.split(".")[1] for m in (*LIBRARY_MODULES, *LIBRARY_PACKAGES)}
    return public


PUBLIC = public_names()


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_every_library_module_declares_its_public_names(module: str) -> None:
    assert hasattr(importlib.import_module(module), "__all__"), (
        f"{module} has no __all__: say which of its names plugins may use")


def private_uses(source: str, where: str) -> list[str]:
    """Every import of (or attribute reached through) a non-public rvforge-core name."""
    found = []

    def check(module: str, name: str, line: int) -> None:
        if f"{module}.{name}" in PUBLIC:
            return
        if module not in PUBLIC:
            found.append(f"{where}:{line}: module {module} is not public")
        elif name not in PUBLIC[module]:
            found.append(f"{where}:{line}: {module}.{name} is not public")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "rvforge" or node.module.startswith("rvforge.")):
            for alias in node.names:
                check(node.module, alias.name, node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module, _, name = alias.name.rpartition(".")
                if module.split(".")[0] == "rvforge":
                    check(module, name, node.lineno)
        elif isinstance(node, ast.Attribute):
            chain = attribute_chain(node)
            if chain and chain[0] == "rvforge" and len(chain) > 1:
                module = "rvforge"
                for name in chain[1:]:
                    check(module, name, node.lineno)
                    if f"{module}.{name}" not in PUBLIC:
                        break
                    module = f"{module}.{name}"
    return list(dict.fromkeys(found))  # an inner attribute of a chain repeats its report


def attribute_chain(node: ast.Attribute) -> list[str]:
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    return [value.id, *reversed(parts)] if isinstance(value, ast.Name) else []


def test_every_library_module_declares_what_is_public() -> None:
    for module in LIBRARY_MODULES:
        imported = importlib.import_module(module)
        assert hasattr(imported, "__all__"), f"{module} has no __all__"
        missing = [n for n in imported.__all__ if not hasattr(imported, n)]
        assert not missing, f"{module}.__all__ names what it lacks: {missing}"
    for name in rvforge.__all__:
        getattr(rvforge, name)


@pytest.mark.parametrize("source", PLUGIN_SOURCES, ids=lambda p: p.parent.name)
def test_plugin_packages_import_only_public_names(source: Path) -> None:
    files = sorted(source.rglob("*.py"))
    assert files
    found = [use for path in files
             for use in private_uses(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "\n".join(found)


def test_the_check_reports_each_way_of_reaching_a_private_name() -> None:
    source = (
        "import rvforge\n"
        "import rvforge.registry\n"
        "from rvforge.tree import FileWindow\n"
        "from rvforge import Tree, pipeline\n"
        "from rvforge.net.download import fetch, _retry\n"
        "from rvforge.formats import tar\n"
        "x = rvforge.cli.app\n"
        "y = rvforge.riscv.isa.parse_isa, rvforge.Provider\n"
    )
    assert private_uses(source, "p.py") == [
        "p.py:2: rvforge.registry is not public",
        "p.py:3: module rvforge.tree is not public",
        "p.py:4: rvforge.pipeline is not public",
        "p.py:5: rvforge.net.download._retry is not public",
        "p.py:7: rvforge.cli is not public",
    ]


@pytest.mark.parametrize(("old", "new", "names"), [
    ("rvforge.machines", "rvforge.auto_machine",
     ["pick_machine", "machine_for_tree", "machine_for_image"]),
    ("rvforge.builtin.auditors.isa", "rvforge.riscv.needs",
     ["tree_needs", "sweep_file", "dispatch_evidence"]),
    ("rvforge.formats.packages", "rvforge.formats.package",
     ["Package", "MemberSink", "read_tar_members", "MAX_UNPACKED", "MAX_RATIO"]),
])
def test_moved_names_stay_importable_from_their_old_modules_for_one_release(
        old: str, new: str, names: list[str]) -> None:
    """rvforge-core 0.3 moved these; code written against 0.2 keeps working until 0.4."""
    for name in names:
        assert getattr(importlib.import_module(old), name) is getattr(
            importlib.import_module(new), name), f"{old}.{name}"
    from rvforge.machines import AUTO_MACHINE, machine_for_image  # noqa: F401

    assert AUTO_MACHINE == "auto"
