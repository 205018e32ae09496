"""Which minirootfs a ``--release`` means, and where a mirror keeps it.

``--release`` is a branch (``latest-stable``, ``edge``, ``3.21`` or ``v3.21``), resolved
through the branch's ``releases/<arch>/latest-releases.yaml``, or an exact version
(``3.21.2``), whose file name is built and whose digests are read from the ``.sha256`` and
``.sha512`` files next to it. Alpine publishes riscv64 images from 3.20 on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rvforge import InputError, UsageError
from rvforge.numbers import is_decimal

ARCH = "riscv64"
FIRST_RISCV64 = (3, 20)
FLAVOR = "alpine-minirootfs"
LATEST_RELEASES = "latest-releases.yaml"

_BRANCH = re.compile(r"^v?([0-9]+)\.([0-9]+)$")
_EXACT = re.compile(r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)(_rc[0-9]+)?$")
_HEX = re.compile(r"^[0-9a-f]+$")
_MIRROR_BRANCH = re.compile(r"^(v[0-9]+\.[0-9]+|edge|latest-stable)$")
_MIRROR_VERSION = re.compile(r"^[0-9][0-9A-Za-z._]{0,63}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")


def checked(value: str, pattern: re.Pattern[str], field: str, expected: str, *,
            label: str) -> str:
    """``value`` of the mirror's ``field`` if it matches ``pattern``; else an
    :class:`InputError` naming the field, the mirror file and what was expected. Mirror
    values become path components only through here."""
    if not pattern.match(value):
        raise InputError(f"{label}: {field} {value!r} is not {expected}; refusing the "
                         "mirror's value (it would become a path)")
    return value


@dataclass(frozen=True)
class ReleaseRequest:
    """A parsed ``--release``.

    :param branch: the mirror directory: ``latest-stable``, ``edge`` or ``v3.21``.
    :param version: an exact version (``3.21.2``), or ``None`` for "the branch's latest".
    """

    branch: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ReleaseRequest:
        value = text.strip()
        if value in ("latest-stable", "edge"):
            return cls(value)
        branch = _BRANCH.match(value)
        exact = _EXACT.match(value)
        match = branch or exact
        if match is None:
            raise UsageError(
                f"--release {text!r}: expected latest-stable, edge, a branch such as 3.21 "
                "(or v3.21) or a version such as 3.21.2"
            )
        major, minor = int(match[1]), int(match[2])
        if (major, minor) < FIRST_RISCV64:
            raise UsageError(
                f"--release {text!r}: Alpine publishes {ARCH} images from 3.20 on; "
                "choose 3.20 or later (or latest-stable)"
            )
        branch_name = f"v{major}.{minor}"
        if exact is not None:
            return cls(branch_name, value.lstrip("v"))
        return cls(branch_name)


@dataclass(frozen=True)
class ReleaseFile:
    """A resolved minirootfs image: its branch, version, file name and expected digests.

    :param branch: the branch packages come from (``v3.20``; ``latest-stable`` resolved
        through the YAML's ``branch`` field).
    :param digests: ``sha256``/``sha512`` → lowercase hex; at least one.
    :param size: bytes, when the YAML says.
    """

    branch: str
    version: str
    file: str
    digests: dict[str, str]
    size: int | None = None


def minirootfs_name(version: str) -> str:
    return f"{FLAVOR}-{version}-{ARCH}.tar.gz"


def releases_dir(branch: str) -> str:
    """The mirror-relative directory holding a branch's images (``v3.20/releases/riscv64``)."""
    return f"{branch}/releases/{ARCH}"


def parse_yaml_list(text: str, *, label: str) -> list[dict[str, str]]:
    """Parse the YAML Alpine writes for ``latest-releases.yaml``: a list of flat mappings
    of scalars (``-`` starts an entry; ``key: value`` lines; values plain or quoted, a
    quoted one possibly folded over several lines, as ``desc`` is).

    Only that shape is accepted; anything else is an error naming the line.
    """
    entries: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    open_key: str | None = None  # a quoted value continues on the next lines
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if current is not None and open_key is not None:
            current[open_key] += " " + stripped
            if _closed(current[open_key]):
                current[open_key] = _scalar(current[open_key])
                open_key = None
            continue
        if not stripped or stripped.startswith("#") or stripped == "---":
            continue
        if stripped.startswith("-") and (len(stripped) == 1 or stripped[1] == " "):
            current = {}
            entries.append(current)
            stripped = stripped[1:].strip()
            if not stripped:
                continue
        if current is None:
            raise InputError(f"{label} line {number}: expected a list entry ('-'), got "
                             f"{raw.strip()!r}")
        key, sep, value = stripped.partition(":")
        if not sep or not key or " " in key:
            raise InputError(f"{label} line {number}: expected 'key: value', got "
                             f"{raw.strip()!r}")
        value = value.strip()
        if _closed(value):
            current[key] = _scalar(value)
        else:
            current[key], open_key = value, key
    if open_key is not None:
        raise InputError(f"{label}: the quoted value of {open_key!r} never ends")
    return entries


def _closed(value: str) -> bool:
    """False while a quoted scalar's closing quote has not been seen."""
    if value[:1] not in ("'", '"'):
        return True
    body = value[1:].replace('\\"', "") if value[0] == '"' else value[1:].replace("''", "")
    return value[0] in body


def _scalar(value: str) -> str:
    """A YAML scalar: quoted (``"..."`` or ``'...'``) or plain, with a ``#`` comment."""
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        while quote == '"' and end > 0 and value[end - 1] == "\\":
            end = value.find(quote, end + 1)
        inner = value[1:end] if end > 0 else value[1:]
        return inner.replace("''", "'") if quote == "'" else inner.replace('\\"', '"')
    return value.split(" #", 1)[0].rstrip()


def from_latest_releases(text: str, branch: str, *, label: str) -> ReleaseFile:
    """The minirootfs entry of a ``latest-releases.yaml``."""
    for entry in parse_yaml_list(text, label=label):
        if entry.get("flavor") != FLAVOR or entry.get("arch", ARCH) != ARCH:
            continue
        missing = [key for key in ("file", "version") if not entry.get(key)]
        if missing:
            raise InputError(f"{label}: the {FLAVOR} entry lacks {', '.join(missing)}")
        digests = {algo: entry[algo].lower() for algo in ("sha256", "sha512")
                   if entry.get(algo)}
        if not digests:
            raise InputError(f"{label}: the {FLAVOR} entry has neither sha256 nor sha512; "
                             "refusing an image that cannot be verified")
        for algo, digest in digests.items():
            if not _HEX.match(digest):
                raise InputError(f"{label}: the {FLAVOR} entry's {algo} is not hex")
        where = f"the {FLAVOR} entry's"
        file = checked(entry["file"], _FILE_NAME, f"{where} file", "a plain file name",
                       label=label)
        version = checked(entry["version"], _MIRROR_VERSION, f"{where} version",
                          "an Alpine version (3.20.3)", label=label)
        found = checked(entry.get("branch") or branch, _MIRROR_BRANCH, f"{where} branch",
                        "an Alpine branch (vN.N, edge or latest-stable)", label=label)
        size = entry.get("size")
        return ReleaseFile(
            branch=found, version=version, file=file, digests=digests,
            size=int(size) if size and is_decimal(size, max_digits=15) else None,
        )
    raise InputError(f"{label}: no {FLAVOR} entry for {ARCH}; the mirror has no {ARCH} "
                     "minirootfs for this branch")


def parse_checksum_file(text: str, file: str, algorithm: str, *, label: str) -> str:
    """The digest of ``file`` in a ``.sha256``/``.sha512`` file (``HEX  NAME`` lines, as
    ``sha256sum`` writes; a lone digest is accepted too)."""
    length = {"sha256": 64, "sha512": 128}[algorithm]
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        digest = words[0].lower()
        name = words[1].lstrip("*") if len(words) > 1 else file
        if name == file and len(digest) == length and _HEX.match(digest):
            return digest
    raise InputError(f"{label}: no {algorithm} digest for {file}")
