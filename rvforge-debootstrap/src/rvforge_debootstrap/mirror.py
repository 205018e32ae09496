"""Which Debian mirror to use: ``--mirror``, else ``$RVFORGE_DEBIAN_MIRROR``, else the mirror
the host's apt is configured with.

The host's sources are read from ``/etc/apt/sources.list`` and
``/etc/apt/sources.list.d/*.list`` (one-line ``deb URI SUITE COMPONENTS``) and
``*.sources`` (deb822 ``Types``/``URIs``/``Suites``). The first ``deb`` entry whose suites
look like Debian's own (a codename or ``stable``/``testing``/``unstable``, without a
``-security`` or ``-updates`` suffix) and that offers ``main`` is taken: that excludes
security mirrors and third-party repositories. rvforge never names a mirror itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rvforge import UsageError
from rvforge.net.download import check_mirror_url

from rvforge_debootstrap import deb822

ENV_VAR = "RVFORGE_DEBIAN_MIRROR"
APT_ETC = Path("/etc/apt")
DEBIAN_SUITES = frozenset({
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental",
})


@dataclass(frozen=True)
class SourceEntry:
    """One ``deb`` source of the host's apt configuration."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: Path

    @property
    def is_debian_main(self) -> bool:
        return "main" in self.components and any(
            suite.lower() in DEBIAN_SUITES for suite in self.suites
        )


def choose_mirror(explicit: str | None = None, *, apt_etc: Path = APT_ETC) -> str:
    """The mirror URL (or local path) to use, without a trailing ``/``.

    :raises UsageError: when neither ``--mirror``, ``$RVFORGE_DEBIAN_MIRROR`` nor the host's
        apt sources give one.
    """
    for option, candidate in (("--mirror", explicit), (f"${ENV_VAR}", os.environ.get(ENV_VAR))):
        if candidate and candidate.strip():
            return check_mirror_url(candidate.strip(), option=option).rstrip("/")
    for entry in host_sources(apt_etc):
        if entry.is_debian_main:
            return entry.uri.rstrip("/")
    raise UsageError(
        f"no Debian mirror: pass --mirror URL (or set {ENV_VAR}); none was found in "
        f"{apt_etc}/sources.list or {apt_etc}/sources.list.d/"
    )


def host_sources(apt_etc: Path = APT_ETC) -> list[SourceEntry]:
    """Every enabled ``deb`` entry of the host's apt sources, in the order apt reads them."""
    files = [apt_etc / "sources.list"]
    parts = apt_etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    entries: list[SourceEntry] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            entries += _deb822_entries(text, path)
        else:
            entries += _one_line_entries(text, path)
    return entries


def _one_line_entries(text: str, origin: Path) -> list[SourceEntry]:
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = words[1:]
        if words[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            entries.append(SourceEntry(words[0], (words[1],), tuple(words[2:]), origin))
    return entries


def _deb822_entries(text: str, origin: Path) -> list[SourceEntry]:
    entries = []
    try:
        paragraphs = list(deb822.parse(text))
    except ValueError:
        return []
    for para in paragraphs:
        if "deb" not in para.field("Types").split():
            continue
        if para.field("Enabled", "yes").strip().lower() == "no":
            continue
        suites = tuple(para.field("Suites").split())
        components = tuple(para.field("Components").split())
        for uri in para.field("URIs").split():
            entries.append(SourceEntry(uri, suites, components, origin))
    return entries
