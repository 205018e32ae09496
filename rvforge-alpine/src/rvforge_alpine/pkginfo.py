"""What apk knows about a package: :class:`PackageInfo` records and :class:`Dependency` atoms.

The same record comes from three places with the same one-letter keys: an ``APKINDEX``
(repository index), ``lib/apk/db/installed`` (what a root filesystem holds) and an
``.apk``'s ``.PKGINFO`` (``key = value`` names, mapped to the letters here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rvforge import InputError
from rvforge.numbers import parse_decimal

from rvforge_alpine import versions

_ATOM = re.compile(r"^(?P<neg>!?)(?P<name>[^<>=~!\s]+)"
                   r"(?:(?P<op>><|<=|>=|<~|>~|<|>|=|~)(?P<version>\S+))?$")


@dataclass(frozen=True)
class Dependency:
    """One dependency atom: ``so:libc.musl-riscv64.so.1``, ``busybox>=1.36``, ``!foo``.

    :param name: a package name or a provided name (``so:``, ``cmd:``, ``pc:``, ``/bin/sh``).
    :param op: a version operator (``=``, ``>=``, ``~``, ``><`` for a checksum pin...) or
        ``None`` for any version.
    :param version: the version (or, with ``><``, the package checksum) the operator uses.
    :param conflict: ``!name``: the package must not be installed.
    """

    name: str
    op: str | None = None
    version: str | None = None
    conflict: bool = False

    @classmethod
    def parse(cls, atom: str, *, where: str = "") -> Dependency:
        match = _ATOM.match(atom)
        if match is None:
            raise InputError(f"{where or 'dependency'}: malformed dependency {atom!r}")
        op, version = match["op"], match["version"]
        if op is not None and op != "><" and not versions.is_valid(version):
            raise InputError(f"{where or 'dependency'}: {atom!r} has an invalid version "
                             f"{version!r}")
        return cls(match["name"], op, version, bool(match["neg"]))

    def matches(self, version: str | None, checksum: str = "") -> bool:
        """True when a package (or provide) at ``version`` meets the version constraint.

        An unversioned provide (``version`` ``None``) meets only unconstrained atoms.
        """
        if self.op is None:
            return True
        if self.op == "><":
            return checksum == self.version
        if version is None:
            return False
        return versions.satisfies(version, self.op, self.version or "")

    def __str__(self) -> str:
        text = f"{'!' if self.conflict else ''}{self.name}"
        return text + (f"{self.op}{self.version}" if self.op else "")


def parse_atoms(text: str, *, where: str = "") -> list[Dependency]:
    """A space-separated list of atoms (``D:``, ``p:``, ``i:`` values)."""
    return [Dependency.parse(atom, where=where) for atom in text.split()]


@dataclass
class PackageInfo:
    """One package version, as a repository index or the installed database records it.

    :param checksum: ``C:``: ``Q1`` + base64 of the SHA-1 of the package's control stream.
    :param provides: ``p:`` atoms; a versioned one (``so:libz.so.1=1.3.1``) makes the
        package selectable for that name, an unversioned one only with ``provider_priority``.
    :param install_if: ``i:``: installed automatically once all of these are installed.
    :param provider_priority: ``k:``; ``None`` when absent.
    :param replaces: ``r:``: packages whose files this one may overwrite.
    :param unknown: unknown upper-case keys seen in the index, which make the package
        uninstallable (apk's rule for fields from a newer format).
    :param repository: where it came from (``main``, ``community``, ``installed``).
    """

    name: str
    version: str
    checksum: str = ""
    arch: str = ""
    size: int = 0
    installed_size: int = 0
    description: str = ""
    url: str = ""
    license: str = ""
    origin: str = ""
    maintainer: str = ""
    build_time: str = ""
    commit: str = ""
    depends: list[Dependency] = field(default_factory=list)
    provides: list[Dependency] = field(default_factory=list)
    install_if: list[Dependency] = field(default_factory=list)
    provider_priority: int | None = None
    replaces: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    repository: str = ""

    @property
    def label(self) -> str:
        """``name-version``, as apk prints packages."""
        return f"{self.name}-{self.version}"

    def provided(self, name: str) -> tuple[bool, str | None]:
        """Whether this package provides ``name``, and at which version (``None``:
        unversioned provide)."""
        if name == self.name:
            return True, self.version
        for provide in self.provides:
            if provide.name == name:
                return True, provide.version
        return False, None

    def satisfies(self, dep: Dependency) -> bool:
        """True when this package meets (non-conflict) atom ``dep``."""
        found, version = self.provided(dep.name)
        return found and dep.matches(version, self.checksum)

    def header_lines(self) -> list[tuple[str, str]]:
        """The package's ``X:value`` lines in apk's order (empty fields left out)."""
        lines = [("C", self.checksum), ("P", self.name), ("V", self.version),
                 ("A", self.arch), ("S", str(self.size)), ("I", str(self.installed_size)),
                 ("T", self.description), ("U", self.url), ("L", self.license),
                 ("o", self.origin), ("m", self.maintainer), ("t", self.build_time),
                 ("c", self.commit)]
        if self.provider_priority is not None:
            lines.append(("k", str(self.provider_priority)))
        lines += [("D", " ".join(map(str, self.depends))),
                  ("p", " ".join(map(str, self.provides))),
                  ("i", " ".join(map(str, self.install_if))),
                  ("r", " ".join(self.replaces))]
        return [(key, value) for key, value in lines if value]


_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,127}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,127}$")
_INDEX_KEYS = {"C", "P", "V", "A", "S", "I", "T", "U", "L", "o", "m", "t", "c", "D", "p",
               "i", "k", "r", "q"}


def from_fields(fields: list[tuple[str, str]], *, where: str, repository: str = ""
                ) -> PackageInfo:
    """Build a :class:`PackageInfo` from ``X:value`` pairs (an index or database record).

    Keys the database adds for files (``F``, ``R``, ``Z``, ``a``, ``M``...) are the caller's
    business and are ignored here, as are unknown lower-case keys.
    """
    values: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in fields:
        if key in _INDEX_KEYS:
            values.setdefault(key, value)
        elif key.isupper() and key not in ("F", "R", "Z", "M"):
            unknown.append(key)
    name, version = values.get("P"), values.get("V")
    if not name or not version:
        raise InputError(f"{where}: a package record without P: (name) or V: (version)")
    for key, value, pattern in (("P", name, _NAME), ("V", version, _VERSION)):
        if not pattern.match(value):
            raise InputError(f"{where}: {key}:{value!r} is not an apk package "
                             f"{'name' if key == 'P' else 'version'}; refusing the record "
                             "(the value would become a file name)")
    label = f"{where}: {name}-{version}"
    priority = parse_decimal(values["k"], f"{label}: k:") if "k" in values else None
    size = parse_decimal(values.get("S", "0") or "0", f"{label}: S:")
    installed = parse_decimal(values.get("I", "0") or "0", f"{label}: I:")
    return PackageInfo(
        name=name, version=version, checksum=values.get("C", ""), arch=values.get("A", ""),
        size=size, installed_size=installed, description=values.get("T", ""),
        url=values.get("U", ""), license=values.get("L", ""), origin=values.get("o", ""),
        maintainer=values.get("m", ""), build_time=values.get("t", ""),
        commit=values.get("c", ""),
        depends=parse_atoms(values.get("D", ""), where=label),
        provides=parse_atoms(values.get("p", ""), where=label),
        install_if=parse_atoms(values.get("i", ""), where=label),
        provider_priority=priority, replaces=values.get("r", "").split(),
        unknown=unknown, repository=repository,
    )


PKGINFO_KEYS = {
    "pkgname": "P", "pkgver": "V", "pkgdesc": "T", "url": "U", "builddate": "t",
    "size": "I", "arch": "A", "origin": "o", "commit": "c", "maintainer": "m",
    "license": "L", "depend": "D", "provides": "p", "install_if": "i",
    "provider_priority": "k", "replaces": "r",
}
"""``.PKGINFO`` keys and the index letters they become (``depend``/``provides`` repeat)."""


def parse_pkginfo(text: str, *, where: str) -> tuple[PackageInfo, dict[str, list[str]]]:
    """Parse a ``.PKGINFO`` (``key = value`` lines, ``#`` comments).

    :returns: the package record (without checksum and ``.apk`` size) and every key's raw
        values (``datahash``, ``triggers``...).
    """
    raw: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            raise InputError(f"{where}: .PKGINFO line {number} is not 'key = value': "
                             f"{line!r}")
        raw.setdefault(key.strip(), []).append(value.strip())
    fields = []
    for key, letter in PKGINFO_KEYS.items():
        if key in raw:
            joiner = " " if letter in ("D", "p", "i", "r") else ""
            fields.append((letter, joiner.join(raw[key]) if joiner else raw[key][0]))
    return from_fields(fields, where=where), raw
