"""The import graph of the four packages has no cycle (imports at load time and inside
functions count; ``if TYPE_CHECKING:`` ones do not, as in pytest), and
``rvforge.machines`` imports no plugin module: a cycle is a module that cannot be
understood, or imported, on its own."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "rvforge": ROOT / "rvforge-core" / "src" / "rvforge",
    "rvforge_alpine": ROOT / "rvforge-alpine" / "src" / "rvforge_alpine",
    "rvforge_debootstrap": ROOT / "rvforge-debootstrap" / "src" / "rvforge_debootstrap",
    "rvforge_qemu": ROOT / "rvforge-qemu" / "src" / "rvforge_qemu",
}


def module_files() -> dict[str, Path]:
    """Every module of the four packages by dotted name (a package by its ``__init__``)."""
    found = {}
    for package, directory in PACKAGES.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [package, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements that run (at load time or when a function runs): everything but
    the body of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the four packages it imports (a name from the ``rvforge``
    facade counts as its real module; importing ``a.b.c`` runs ``a`` and ``a.b`` too, except
    the importing module's own packages)."""
    modules = module_files()
    facade: dict[str, str] = {
        name: module for module, names in importlib.import_module("rvforge")._EXPORTS.items()
        for name in names}
    graph: dict[str, set[str]] = {name: set() for name in modules}

    def add(source: str, target: str) -> None:
        # a module's own packages are already being imported when it runs: no edge to them
        own = {".".join(source.split(".")[:n]) for n in range(1, source.count(".") + 2)}
        parts = target.split(".")
        for n in range(1, len(parts) + 1):
            prefix = ".".join(parts[:n])
            if prefix in modules and prefix not in own:
                graph[source].add(prefix)

    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(name, alias.name)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    add(name, full)
                elif base == "rvforge" and alias.name in facade:
                    add(name, facade[alias.name])
                else:
                    add(name, base)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_four_packages_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300  # it read them all
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_machines_is_a_plain_value_module() -> None:
    graph = import_graph()
    # only the one-release shim for the auto-pick functions that lived there (0.2)
    assert graph["rvforge.machines"] == {"rvforge.auto_machine"}
    plugins = {m for m in reachable(graph, "rvforge.machines")
               if m.startswith(("rvforge.builtin", "rvforge_"))}
    assert plugins == set()
    assert "rvforge.builtin.auditors.isa" not in graph["rvforge.auto_machine"]
    assert "rvforge.riscv.needs" in graph["rvforge.auto_machine"]
    assert "rvforge.riscv.needs" in graph["rvforge.builtin.auditors.isa"]


@pytest.mark.parametrize("source, expected", [
    ("import a.b\n", {"a.b"}),
    ("def f():\n    from a import b\n", {"a"}),
    ("class C:\n    def f(self):\n        import a\n", {"a"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\nelse:\n"
     "    import a\n", {"typing", "a"}),
    ("import typing\nif typing.TYPE_CHECKING:\n    import b\n", {"typing"}),
])
def test_the_graph_counts_function_level_imports_and_skips_type_checking_ones(
        source: str, expected: set[str]) -> None:
    found = set()
    for node in _runtime_imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        else:
            found.add(node.module or "")
    assert found == expected


def test_a_cycle_is_found_and_named() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
