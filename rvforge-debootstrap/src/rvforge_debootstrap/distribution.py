"""The distributions the provider builds: Debian and Ubuntu, and what differs between them.

Both use the same archive format (signed ``InRelease``, ``Packages.xz``, ``.deb``). Ubuntu
keeps riscv64 on its *ports* archive (the ``ubuntu-ports`` layout, ``dists/SUITE/COMPONENT/
binary-riscv64``), splits what Debian has in ``main`` into ``main`` and ``universe``, and
signs with the keys of Debian's ``ubuntu-keyring`` package. Ubuntu 25.10 and later are
built for the RVA23 profile (vector included): their images default to an RVA23 machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rvforge import UsageError

RVA23_MACHINE = "qemu-virt-rva23"


@dataclass(frozen=True)
class Distribution:
    """What the provider needs to know of one distribution.

    :param name: ``debian`` or ``ubuntu`` (``--distribution``).
    :param default_release: the release built when ``--release`` is not given.
    :param components: the archive components whose indexes are read, in order.
    :param keyring: the keyring that signs its suites, and the package that installs it.
    :param mirror_env: the environment variable naming a mirror.
    :param codenames: suites recognised in the host's apt sources.
    """

    name: str
    default_release: str
    components: tuple[str, ...]
    keyring: Path
    keyring_package: str
    mirror_env: str
    codenames: frozenset[str]


DEBIAN = Distribution(
    name="debian", default_release="trixie", components=("main",),
    keyring=Path("/usr/share/keyrings/debian-archive-keyring.gpg"),
    keyring_package="debian-archive-keyring", mirror_env="RVFORGE_DEBIAN_MIRROR",
    codenames=frozenset({
        "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
        "oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental"}),
)

UBUNTU_VERSIONS = {
    "focal": "20.04", "groovy": "20.10", "hirsute": "21.04", "impish": "21.10",
    "jammy": "22.04", "kinetic": "22.10", "lunar": "23.04", "mantic": "23.10",
    "noble": "24.04", "oracular": "24.10", "plucky": "25.04", "questing": "25.10",
    "resolute": "26.04",
}
"""Every Ubuntu release with riscv64 packages so far (riscv64 began with 20.04)."""

UBUNTU = Distribution(
    name="ubuntu", default_release="noble", components=("main", "universe"),
    keyring=Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg"),
    keyring_package="ubuntu-keyring", mirror_env="RVFORGE_UBUNTU_MIRROR",
    codenames=frozenset(UBUNTU_VERSIONS) | {"devel"},
)

DISTRIBUTIONS = {d.name: d for d in (DEBIAN, UBUNTU)}


def distribution(name: str) -> Distribution:
    """The distribution called ``name``.

    :raises UsageError: naming the known ones.
    """
    try:
        return DISTRIBUTIONS[name]
    except KeyError:
        raise UsageError(f"--distribution must be one of {', '.join(DISTRIBUTIONS)}, not "
                         f"{name!r}") from None


def suite_codename(release: str) -> str:
    """``questing`` of ``questing``, ``questing-updates`` or ``questing-proposed``."""
    return re.sub(r"-(updates|security|proposed|backports)$", "", release.lower())


def is_rva23_release(dist: Distribution, release: str) -> bool:
    """Whether ``release`` of ``dist`` is built for RVA23: Ubuntu 25.10 and later (a
    codename newer than every one known here, and ``devel``, count as later)."""
    if dist is not UBUNTU:
        return False
    version = UBUNTU_VERSIONS.get(suite_codename(release))
    if version is None:
        return True
    major, minor = (int(n) for n in version.split("."))
    return (major, minor) >= (25, 10)


def default_machine(dist: Distribution, release: str) -> str | None:
    """The machine profile images of ``release`` are audited for and boot on when the user
    names none (an RVA23 release: :data:`RVA23_MACHINE`)."""
    return RVA23_MACHINE if is_rva23_release(dist, release) else None
