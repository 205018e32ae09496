"""Choosing which packages to install for a request, as ``apk add`` would.

The rules are apk's: a dependency names a package or something packages provide
(``so:libz.so.1``, ``cmd:sh``, ``pc:zlib``, ``/bin/sh``); a versioned provide makes a
package selectable for that name, an unversioned one only when it has a
``provider_priority`` (or is asked for by its own name); among candidates the package
named exactly like the dependency wins, then the higher provider priority, then the higher
version (Alpine's ordering); ``!name`` forbids a package; installed packages count and are
never replaced; ``install_if`` packages join once all their conditions are installed.

The search is greedy and depth-first (apk's solver also backtracks, which Alpine's own
repositories never need for a consistent branch): the first choice that conflicts is
reported with the chain of dependencies that led to it. Its work is linear in the index:
what is selected is indexed by every name it provides, and an ``install_if`` package is
looked at again only when something providing one of its conditions joins.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from rvforge import InputError

from rvforge_alpine import versions
from rvforge_alpine.pkginfo import Dependency, PackageInfo

ARCHES = ("riscv64", "noarch")


class UnresolvableError(InputError):
    """No set of packages meets a request; the message names the chain that failed."""


@dataclass
class Plan:
    """The outcome of :meth:`Resolver.resolve`.

    :param install: new packages, dependencies before the packages needing them.
    :param reasons: package name → the chain that pulled it in (``world → curl``).
    """

    install: list[PackageInfo] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)


def _by_version(a: PackageInfo, b: PackageInfo) -> int:
    return versions.compare(a.version, b.version)


class Resolver:
    """Resolves dependency atoms against repository packages and installed ones.

    :param available: every package of the repositories (any order; several versions of
        one name are fine).
    :param installed: what the tree already holds (``lib/apk/db/installed``).
    """

    def __init__(self, available: Iterable[PackageInfo], installed: Iterable[PackageInfo]
                 ) -> None:
        self.installed = {pkg.name: pkg for pkg in installed}
        self.available = [pkg for pkg in available if pkg.arch in ARCHES or not pkg.arch]
        self._providers: dict[str, list[PackageInfo]] = {}
        for pkg in [*self.available, *self.installed.values()]:
            for name in [pkg.name, *(p.name for p in pkg.provides)]:
                self._providers.setdefault(name, []).append(pkg)

    def resolve(self, requests: list[Dependency]) -> Plan:
        """The packages to add so that every request (and its dependencies) holds."""
        state = _State()
        for pkg in self.installed.values():
            state.add(pkg)
        for pkg in self.installed.values():
            for dep in pkg.depends:
                if dep.conflict:
                    state.forbid_by(dep, pkg.label)
        for request in requests:
            self._require(request, ["world"], state)
        self._install_if(state)
        return Plan(state.install, state.reasons)

    # -- internals -------------------------------------------------------------------

    def _require(self, dep: Dependency, chain: list[str], state: _State) -> None:
        if dep.conflict:
            clash = state.meeting(_positive(dep))
            if clash:
                raise UnresolvableError(
                    f"{_chain(chain, dep)}: conflicts with {clash[0].label}, which is "
                    f"{'installed' if clash[0].name in self.installed else 'needed'}"
                )
            state.forbid_by(dep, chain[-1])
            return
        if state.meeting(dep):
            return
        candidates = self.candidates(dep)
        if not candidates:
            raise UnresolvableError(f"{_chain(chain, dep)}: {self._why_none(dep)}")
        problems = []
        for candidate in candidates:
            problem = self._problem(candidate, state)
            if problem is None:
                self._select(candidate, [*chain, candidate.label], state)
                return
            problems.append(problem)
        raise UnresolvableError(f"{_chain(chain, dep)}: {problems[0]}")

    def candidates(self, dep: Dependency) -> list[PackageInfo]:
        """Packages able to meet ``dep``, best first."""
        found = []
        for pkg in self._providers.get(dep.name, []):
            if pkg.unknown or not pkg.satisfies(dep):
                continue
            _, provided_version = pkg.provided(dep.name)
            if (pkg.name != dep.name and provided_version is None
                    and pkg.provider_priority is None):
                continue  # unversioned provide without a priority: only by its own name
            found.append(pkg)

        def better(a: PackageInfo, b: PackageInfo) -> int:
            key_a = (a.name == dep.name, a.provider_priority or 0)
            key_b = (b.name == dep.name, b.provider_priority or 0)
            if key_a != key_b:
                return 1 if key_a > key_b else -1
            if a.name == b.name:
                return _by_version(a, b)
            return (a.name < b.name) - (a.name > b.name)  # ties: alphabetical

        return sorted(found, key=functools.cmp_to_key(better), reverse=True)

    def _why_none(self, dep: Dependency) -> str:
        providers = self._providers.get(dep.name, [])
        if not providers:
            return "no package provides it (check the name, or the repositories: main, " \
                   "community)"
        unknown = [p for p in providers if p.unknown]
        if unknown and len(unknown) == len(providers):
            return (f"{unknown[0].label} uses index fields this apk format does not know "
                    f"({', '.join(unknown[0].unknown)})")
        have = ", ".join(sorted({p.label for p in providers}))
        return f"no version matches (have {have})"

    def _problem(self, pkg: PackageInfo, state: _State) -> str | None:
        """Why ``pkg`` cannot join the selection, or ``None``."""
        current = state.selected.get(pkg.name)
        if current is not None and current is not pkg:
            where = "installed" if pkg.name in self.installed else "selected"
            return (f"needs {pkg.label} but {current.label} is {where} (rvforge does not "
                    "replace installed packages; use a matching --release)")
        for name in _names(pkg):
            for forbidden, by in state.forbid.get(name, ()):
                if pkg.satisfies(_positive(forbidden)):
                    return f"{pkg.label} conflicts with {by} (which has {forbidden})"
        for dep in pkg.depends:
            if dep.conflict and (clash := state.meeting(_positive(dep))):
                return f"{pkg.label} conflicts with {clash[0].label} ({dep})"
        return None

    def _select(self, pkg: PackageInfo, chain: list[str], state: _State) -> None:
        if len(chain) > MAX_CHAIN:  # each package is selected once; this bounds the depth
            raise UnresolvableError(f"{' → '.join(chain[:3])} → ... → {chain[-1]}: a "
                                    f"dependency chain longer than {MAX_CHAIN} packages; the "
                                    "index is malformed")
        state.add(pkg)
        state.reasons[pkg.name] = " → ".join(chain)
        for dep in sorted(pkg.depends, key=lambda d: not d.conflict):
            self._require(dep, chain, state)
        state.install.append(pkg)

    def _install_if(self, state: _State) -> None:
        """Add packages whose ``install_if`` conditions all hold, until none is left: each
        is looked at once, then again only when a package providing the name of one of
        its conditions joins (with what it pulls in)."""
        candidates = [pkg for pkg in self._best_per_name() if pkg.install_if and not pkg.unknown]
        waiting: dict[str, list[PackageInfo]] = {}  # a condition's name → who waits on it
        for pkg in candidates:
            for name in dict.fromkeys(cond.name for cond in pkg.install_if):
                waiting.setdefault(name, []).append(pkg)
        queue = deque(candidates)
        queued = {pkg.name for pkg in candidates}
        while queue:
            pkg = queue.popleft()
            queued.discard(pkg.name)
            if pkg.name in state.selected or not all(
                    _holds(cond, state) for cond in pkg.install_if) or (
                    self._problem(pkg, state) is not None):
                continue
            joined = len(state.install)
            conditions = " ".join(map(str, pkg.install_if))
            self._select(pkg, [f"install_if ({conditions})", pkg.label], state)
            for new in state.install[joined:]:
                for name in _names(new):
                    for other in waiting.get(name, ()):
                        if other.name not in state.selected and other.name not in queued:
                            queue.append(other)
                            queued.add(other.name)

    def _best_per_name(self) -> list[PackageInfo]:
        best: dict[str, PackageInfo] = {}
        for pkg in self.available:
            if pkg.name not in best or _by_version(pkg, best[pkg.name]) > 0:
                best[pkg.name] = pkg
        return [best[name] for name in sorted(best)]


@dataclass
class _State:
    """What is selected (installed or to install), indexed by every name it provides, and
    the conflicts (``!name``) declared so far, by name."""

    selected: dict[str, PackageInfo] = field(default_factory=dict)
    install: list[PackageInfo] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    forbid: dict[str, list[tuple[Dependency, str]]] = field(default_factory=dict)
    providing: dict[str, list[PackageInfo]] = field(default_factory=dict)

    def add(self, pkg: PackageInfo) -> None:
        self.selected[pkg.name] = pkg
        for name in _names(pkg):
            self.providing.setdefault(name, []).append(pkg)

    def meeting(self, dep: Dependency) -> list[PackageInfo]:
        """The selected packages that meet the (non-conflict) atom ``dep``."""
        return [pkg for pkg in self.providing.get(dep.name, ()) if pkg.satisfies(dep)]

    def forbid_by(self, dep: Dependency, by: str) -> None:
        self.forbid.setdefault(dep.name, []).append((dep, by))


MAX_CHAIN = 200
"""Packages in one chain of dependencies at most (Alpine's longest are under 30)."""


def _positive(dep: Dependency) -> Dependency:
    return Dependency(dep.name, dep.op, dep.version)


def _holds(condition: Dependency, state: _State) -> bool:
    met = bool(state.meeting(_positive(condition)))
    return not met if condition.conflict else met


def _names(pkg: PackageInfo) -> list[str]:
    """The names ``pkg`` can be asked for by: its own and what it provides."""
    return list(dict.fromkeys([pkg.name, *(provide.name for provide in pkg.provides)]))


def _chain(chain: list[str], dep: Dependency) -> str:
    return "cannot install: " + " → ".join([*chain, str(dep)])
