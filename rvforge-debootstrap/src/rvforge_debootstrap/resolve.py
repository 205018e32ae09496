"""Dependency resolution over a :class:`~rvforge_debootstrap.index.PackageIndex`.

From a set of root packages, every ``Pre-Depends`` and ``Depends`` group is satisfied in
turn, breadth first (``Recommends`` are not followed, as with debootstrap and
``--no-install-recommends``). A group already satisfied by a selected package (by name with
a fitting version, or through its ``Provides``) needs nothing more; otherwise its first
alternative that the index can satisfy is taken: the real package of that name if its
version fits, else a provider (preferring higher priority, then the name). Versions are
compared with dpkg's algorithm. Architecture qualifiers: ``:any`` needs
``Multi-Arch: allowed``; ``:native`` and the target architecture mean the target; any other
architecture cannot be satisfied from a single-architecture index.

A group nothing can satisfy raises :class:`UnsatisfiableError` naming the chain of packages
that led to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rvforge import InputError, UsageError

from rvforge_debootstrap.index import (
    Group,
    Package,
    PackageIndex,
    Relation,
    format_group,
    relation_holds,
)

PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


class UnknownPackageError(UsageError):
    """A package name the index does not have."""


class UnsatisfiableError(InputError):
    """A dependency no package of the index satisfies."""


@dataclass
class Resolution:
    """The selected packages in installation order (dependencies first, where cycles allow)
    and, for each, the package that pulled it in (``None`` for a root)."""

    packages: list[Package] = field(default_factory=list)
    parents: dict[str, str | None] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [p.name for p in self.packages]


def unknown_package(index: PackageIndex, name: str, where: str) -> UnknownPackageError:
    """The error for a name ``index`` lacks, with close matches as a hint."""
    import difflib

    close = difflib.get_close_matches(name, index.names(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownPackageError(f"package {name!r} is not in {where}{hint}")


def resolve(index: PackageIndex, roots: list[str], *, arch: str = "riscv64",
            where: str = "the index") -> Resolution:
    """Select ``roots`` and everything they depend on.

    :param where: names the index in errors (``trixie main/riscv64``).
    :raises UnknownPackageError: a root is not in the index (exit 2).
    :raises UnsatisfiableError: a dependency cannot be met; the message gives the chain.
    """
    selected: dict[str, Package] = {}
    provided: dict[str, list[tuple[Package, Relation]]] = {}
    parents: dict[str, str | None] = {}
    queue: deque[Package] = deque()

    def select(pkg: Package, parent: str | None) -> None:
        if pkg.name in selected:
            return
        selected[pkg.name] = pkg
        parents[pkg.name] = parent
        for relation in pkg.provides:
            provided.setdefault(relation.name, []).append((pkg, relation))
        queue.append(pkg)

    for name in roots:
        pkg = index.get(name)
        if pkg is None:
            raise unknown_package(index, name, where)
        select(pkg, None)

    while queue:
        pkg = queue.popleft()
        for group in pkg.pre_depends + pkg.depends:
            if _satisfied(group, selected, provided, arch):
                continue
            choice = _choose(group, index, arch)
            if choice is None:
                raise UnsatisfiableError(
                    f"cannot satisfy {_chain(pkg.name, parents)} → depends on "
                    f"{format_group(group)}: {_why(group, index, selected, arch)} in {where}"
                )
            select(choice, pkg.name)
    return Resolution(_install_order(selected, provided, arch), parents)


def _arch_ok(relation: Relation, pkg: Package, arch: str) -> bool:
    if relation.arch in (None, "native", arch):
        return True
    if relation.arch == "any":
        return pkg.multi_arch == "allowed"
    return False


def _fits(relation: Relation, version: str) -> bool:
    return relation_holds(relation, version)


def _satisfied(group: Group, selected: dict[str, Package],
               provided: dict[str, list[tuple[Package, Relation]]], arch: str) -> bool:
    for relation in group:
        real = selected.get(relation.name)
        if real is not None and _arch_ok(relation, real, arch) and _fits(relation,
                                                                         real.version):
            return True
        for _, given in provided.get(relation.name, []):
            if relation.op is None or (given.op == "=" and given.version is not None
                                       and _fits(relation, given.version)):
                return True
    return False


def _choose(group: Group, index: PackageIndex, arch: str) -> Package | None:
    for relation in group:
        candidates = [p for p in index.candidates(relation)
                      if p.name != relation.name or _arch_ok(relation, p, arch)]
        if not candidates:
            continue
        real = [p for p in candidates if p.name == relation.name]
        if real:
            return real[0]
        return min(candidates, key=lambda p: (PRIORITY_RANK.get(p.priority, 5), p.name))
    return None


def _why(group: Group, index: PackageIndex, selected: dict[str, Package], arch: str) -> str:
    reasons = []
    for relation in group:
        pkg = selected.get(relation.name) or index.get(relation.name)
        if pkg is None:
            reasons.append(f"{relation.name} is not available")
        elif not _arch_ok(relation, pkg, arch):
            reasons.append(f"{relation.name} is not available for {relation.arch}")
        else:
            reasons.append(f"{relation.name} is {pkg.version}")
    return "; ".join(reasons)


def _chain(name: str, parents: dict[str, str | None]) -> str:
    chain = [name]
    while (parent := parents.get(chain[-1])) is not None and parent not in chain:
        chain.append(parent)
    return " → ".join(reversed(chain))


def _install_order(selected: dict[str, Package],
                   provided: dict[str, list[tuple[Package, Relation]]], arch: str
                   ) -> list[Package]:
    """Depth-first post-order over Pre-Depends and Depends, names sorted for determinism."""
    order: list[Package] = []
    state: dict[str, int] = {}

    def deps_of(pkg: Package) -> list[str]:
        names = []
        for group in pkg.pre_depends + pkg.depends:
            for relation in group:
                if relation.name in selected:
                    names.append(relation.name)
                    break
                givers = [p.name for p, _ in provided.get(relation.name, [])]
                if givers:
                    names.append(sorted(givers)[0])
                    break
        return names

    def visit(name: str) -> None:
        stack = [(name, iter(deps_of(selected[name])))]
        state[name] = 1
        while stack:
            current, deps = stack[-1]
            for dep in deps:
                if state.get(dep) is None:
                    state[dep] = 1
                    stack.append((dep, iter(deps_of(selected[dep]))))
                    break
            else:
                stack.pop()
                state[current] = 2
                order.append(selected[current])

    for name in sorted(selected):
        if state.get(name) is None:
            visit(name)
    return order
