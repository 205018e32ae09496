"""Which mirror to use: ``--mirror``, else ``$RVFORGE_DEBIAN_MIRROR`` (``$RVFORGE_UBUNTU_MIRROR``
for Ubuntu), else the mirror the host's apt is configured with.

The host's sources are read from ``/etc/apt/sources.list`` and
``/etc/apt/sources.list.d/*.list`` (one-line ``deb URI SUITE COMPONENTS``) and
``*.sources`` (deb822 ``Types``/``URIs``/``Suites``). The first ``deb`` entry whose suites
look like Debian's own (a codename or ``stable``/``testing``/``unstable``, without a
``-security`` or ``-updates`` suffix) and that offers ``main`` is taken: that excludes
security mirrors and third-party repositories. For Ubuntu the entry must also be a *ports*
archive (its path ends in ``-ports``, as ``ubuntu-ports`` does): Ubuntu's main archive has no
riscv64 packages. rvforge never names a mirror itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rvforge import UsageError
from rvforge.net.download import check_mirror_url

from rvforge_debootstrap import deb822
from rvforge_debootstrap.distribution import DEBIAN, UBUNTU, Distribution

ENV_VAR = DEBIAN.mirror_env
APT_ETC = Path("/etc/apt")
DEBIAN_SUITES = DEBIAN.codenames


@dataclass(frozen=True)
class SourceEntry:
    """One ``deb`` source of the host's apt configuration."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: Path

    @property
    def is_debian_main(self) -> bool:
        return self.serves(DEBIAN)

    def serves(self, dist: Distribution) -> bool:
        """Whether this entry is ``dist``'s own archive with ``main`` (and riscv64)."""
        if "main" not in self.components or not any(
                suite.lower() in dist.codenames for suite in self.suites):
            return False
        return dist is not UBUNTU or self.uri.rstrip("/").endswith("-ports")


def choose_mirror(explicit: str | None = None, *, apt_etc: Path = APT_ETC,
                  dist: Distribution = DEBIAN) -> str:
    """The mirror URL (or local path) of ``dist`` to use, without a trailing ``/``.

    :raises UsageError: when neither ``--mirror``, the distribution's environment variable
        nor the host's apt sources give one.
    """
    for option, candidate in (("--mirror", explicit),
                              (f"${dist.mirror_env}", os.environ.get(dist.mirror_env))):
        if candidate and candidate.strip():
            return check_mirror_url(candidate.strip(), option=option).rstrip("/")
    for entry in host_sources(apt_etc):
        if entry.serves(dist):
            return entry.uri.rstrip("/")
    ports = " (Ubuntu keeps riscv64 on its ports archive, the ubuntu-ports layout)" \
        if dist is UBUNTU else ""
    raise UsageError(
        f"no {dist.name.capitalize()} mirror: pass --mirror URL{ports} (or set "
        f"{dist.mirror_env}); none was found in {apt_etc}/sources.list or "
        f"{apt_etc}/sources.list.d/"
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
