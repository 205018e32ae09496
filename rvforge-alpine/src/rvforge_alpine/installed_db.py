"""apk's database of a root filesystem: ``lib/apk/db/installed`` and ``etc/apk/world``.

``installed`` holds one record per package: the index's ``X:value`` header lines, then its
files: ``F:`` a directory (``M:uid:gid:mode`` when not ``0:0:755``), ``R:`` a file in it
(``a:uid:gid:mode`` when not ``0:0:644``, ``Z:`` its checksum), plus ``r:``/``q:`` and any
line a newer apk writes. Records are kept line for line, so a database read and written
back is byte-identical, and new packages are appended in the same format.
``world`` lists the packages the user asked for, one per line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from rvforge import InputError

from rvforge_alpine.apkindex import parse_records
from rvforge_alpine.pkginfo import PackageInfo, from_fields

INSTALLED = "/lib/apk/db/installed"
WORLD = "/etc/apk/world"
SCRIPTS = "/lib/apk/db/scripts.tar"
TRIGGERS = "/lib/apk/db/triggers"


@dataclass(frozen=True)
class InstalledFile:
    """One member a package installed, as the database records it.

    :param path: relative to the root, no leading slash (``usr/bin/foo``).
    :param is_dir: a directory (``F:``) rather than a file or link (``R:``).
    :param checksum: ``Z:`` (``Q1`` + base64 SHA-1 of the data or link target), if any.
    """

    path: str
    is_dir: bool
    uid: int = 0
    gid: int = 0
    mode: int = 0o644
    checksum: str = ""


@dataclass
class InstalledPackage:
    """A package of the database: its record and every line of it, in order."""

    info: PackageInfo
    lines: list[tuple[str, str]]

    def paths(self) -> Iterator[str]:
        """Absolute paths of the directories and files this package owns."""
        directory = ""
        for key, value in self.lines:
            if key == "F":
                directory = value
                yield f"/{value}"
            elif key == "R":
                yield f"/{directory}/{value}" if directory else f"/{value}"


@dataclass
class InstalledDb:
    """The packages of ``lib/apk/db/installed``, in file order."""

    packages: list[InstalledPackage] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, *, label: str = INSTALLED) -> InstalledDb:
        try:
            records = parse_records(text)
        except InputError as error:
            raise InputError(f"{label}: {error}") from None
        return cls([InstalledPackage(from_fields(r, where=label, repository="installed"), r)
                    for r in records])

    def render(self) -> str:
        """The database text, each record followed by a blank line (as apk writes it)."""
        return "".join(
            "".join(f"{key}:{value}\n" for key, value in package.lines) + "\n"
            for package in self.packages
        )

    def by_name(self) -> dict[str, InstalledPackage]:
        return {package.info.name: package for package in self.packages}

    def owners(self) -> dict[str, str]:
        """Each file path → the name of the package that installed it (directories are
        shared and left out)."""
        result: dict[str, str] = {}
        for package in self.packages:
            directory = ""
            for key, value in package.lines:
                if key == "F":
                    directory = value
                elif key == "R":
                    result[f"/{directory}/{value}" if directory else f"/{value}"] = (
                        package.info.name)
        return result

    def add(self, info: PackageInfo, files: list[InstalledFile]) -> InstalledPackage:
        """Record a newly installed package and its files; return the new record."""
        lines = list(info.header_lines())
        current_dir: str | None = None
        for item in _grouped(files):
            if item.is_dir:
                current_dir = item.path
                lines.append(("F", item.path))
                if (item.uid, item.gid, item.mode) != (0, 0, 0o755):
                    lines.append(("M", f"{item.uid}:{item.gid}:{item.mode:o}"))
                continue
            directory, _, name = item.path.rpartition("/")
            if directory != current_dir:
                current_dir = directory
                lines.append(("F", directory))
            lines.append(("R", name))
            if (item.uid, item.gid, item.mode) != (0, 0, 0o644):
                lines.append(("a", f"{item.uid}:{item.gid}:{item.mode:o}"))
            if item.checksum:
                lines.append(("Z", item.checksum))
        package = InstalledPackage(info, lines)
        self.packages.append(package)
        return package


def _grouped(files: list[InstalledFile]) -> list[InstalledFile]:
    """Directories in order of appearance, each followed by the files directly in it."""
    dirs = [f for f in files if f.is_dir]
    known = {d.path for d in dirs}
    order: list[InstalledFile] = []
    members: dict[str, list[InstalledFile]] = {}
    for item in files:
        if not item.is_dir:
            parent = item.path.rpartition("/")[0]
            if parent not in known:
                known.add(parent)
                dirs.append(InstalledFile(parent, True, mode=0o755))
            members.setdefault(parent, []).append(item)
    for directory in dirs:
        order.append(directory)
        order.extend(members.get(directory.path, []))
    return order


def parse_world(text: str) -> list[str]:
    """The atoms of ``etc/apk/world`` (whitespace-separated, usually one per line)."""
    return text.split()


def render_world(atoms: list[str]) -> str:
    """``world`` as apk writes it: unique atoms, sorted, one per line."""
    return "".join(f"{atom}\n" for atom in sorted(set(atoms)))
