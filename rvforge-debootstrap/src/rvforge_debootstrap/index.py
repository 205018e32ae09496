"""A parsed ``Packages`` index: packages by name, virtual packages by provider, and
dependency fields parsed into relations.

Only the fields resolution and download need are kept (:class:`Package`); the index keeps
the highest version of each name. Relations are parsed on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rvforge_debootstrap import debversion

_KEPT = {
    "Package": "name", "Version": "version", "Architecture": "architecture",
    "Multi-Arch": "multi_arch", "Priority": "priority", "Essential": "essential",
    "Section": "section", "Filename": "filename", "Size": "size", "SHA256": "sha256",
    "Depends": "depends_text", "Pre-Depends": "pre_depends_text",
    "Provides": "provides_text", "Installed-Size": "installed_size", "Source": "source",
}
_FIELD = re.compile(r"^([A-Za-z0-9-]+):[ \t]*(.*)$")
_RELATION = re.compile(
    r"^\s*(?P<name>[a-z0-9][a-z0-9.+-]*)(?::(?P<arch>[a-z0-9-]+))?\s*"
    r"(?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<version>[^)\s]+)\s*\))?\s*"
    r"(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$"
)


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative of a dependency: ``name[:arch] [(op version)]``."""

    name: str
    op: str | None = None
    version: str | None = None
    arch: str | None = None

    def __str__(self) -> str:
        name = f"{self.name}:{self.arch}" if self.arch else self.name
        return f"{name} ({self.op} {self.version})" if self.op else name


Group = tuple[Relation, ...]
"""Alternatives ``a | b | c``: any one satisfies the group."""


def format_group(group: Group) -> str:
    return " | ".join(str(r) for r in group)


@functools.lru_cache(maxsize=32768)
def parse_relations(text: str) -> tuple[Group, ...]:
    """Parse a ``Depends``-style field into groups of alternatives.

    :raises ValueError: a relation that is not ``name[:arch] [(op version)]``.
    """
    groups: list[Group] = []
    for part in text.replace("\n", " ").split(","):
        if not part.strip():
            continue
        alternatives = []
        for alt in part.split("|"):
            match = _RELATION.match(alt)
            if match is None:
                raise ValueError(f"unparsable relation {alt.strip()!r}")
            op = match["op"]
            op = {"<": "<=", ">": ">="}.get(op, op) if op else None
            alternatives.append(Relation(match["name"], op, match["version"], match["arch"]))
        groups.append(tuple(alternatives))
    return tuple(groups)


@dataclass(slots=True)
class Package:
    """One binary package of the index."""

    name: str
    version: str
    architecture: str = ""
    multi_arch: str = ""
    priority: str = ""
    essential: str = ""
    section: str = ""
    filename: str = ""
    size: str = "0"
    sha256: str = ""
    depends_text: str = ""
    pre_depends_text: str = ""
    provides_text: str = ""
    installed_size: str = ""
    source: str = ""

    @property
    def is_essential(self) -> bool:
        return self.essential.lower() == "yes"

    @property
    def deb_size(self) -> int:
        return int(self.size)

    @property
    def depends(self) -> tuple[Group, ...]:
        return parse_relations(self.depends_text)

    @property
    def pre_depends(self) -> tuple[Group, ...]:
        return parse_relations(self.pre_depends_text)

    @property
    def provides(self) -> tuple[Relation, ...]:
        return tuple(g[0] for g in parse_relations(self.provides_text))

    @property
    def deb_name(self) -> str:
        """``name_version_arch.deb`` with the epoch's ``:`` escaped as dpkg does (``%3a``)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"


@dataclass
class PackageIndex:
    """Packages by name (highest version kept) and the providers of each virtual name."""

    packages: dict[str, Package] = field(default_factory=dict)
    providers: dict[str, list[tuple[Package, Relation]]] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str, arch: str) -> PackageIndex:
        """Parse a ``Packages`` file's text, keeping packages for ``arch`` and ``all``."""
        return cls.from_packages(p for p in iter_packages(text)
                                 if p.architecture in (arch, "all"))

    @classmethod
    def from_packages(cls, packages: Iterable[Package]) -> PackageIndex:
        index = cls()
        for package in packages:
            old = index.packages.get(package.name)
            if old is None or debversion.compare(package.version, old.version) > 0:
                index.packages[package.name] = package
        for package in index.packages.values():
            for provided in package.provides:
                index.providers.setdefault(provided.name, []).append((package, provided))
        return index

    def __contains__(self, name: object) -> bool:
        return name in self.packages

    def __len__(self) -> int:
        return len(self.packages)

    def get(self, name: str) -> Package | None:
        return self.packages.get(name)

    def candidates(self, relation: Relation) -> list[Package]:
        """Packages that satisfy ``relation``: the real package of that name if its version
        fits, then providers whose ``Provides`` fits (versioned dependencies need a
        versioned ``Provides``, as dpkg requires)."""
        found = []
        real = self.packages.get(relation.name)
        if real is not None and relation_holds(relation, real.version):
            found.append(real)
        for provider, provided in self.providers.get(relation.name, []):
            if relation.op is None or (
                provided.op == "=" and provided.version is not None
                and relation_holds(relation, provided.version)
            ):
                found.append(provider)
        return found


def relation_holds(relation: Relation, version: str) -> bool:
    if relation.op is None or relation.version is None:
        return True
    return debversion.satisfies(version, relation.op, relation.version)


def iter_packages(text: str) -> Iterator[Package]:
    """Yield a :class:`Package` for each paragraph of a ``Packages`` file."""
    for block in text.split("\n\n"):
        values: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line[0] in " \t":
                continue
            match = _FIELD.match(line)
            if match is not None and match[1] in _KEPT:
                values[_KEPT[match[1]]] = match[2].strip()
        if "name" in values and "version" in values:
            yield Package(**values)
