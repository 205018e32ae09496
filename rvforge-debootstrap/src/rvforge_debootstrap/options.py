"""Options of the ``debootstrap`` provider and the values they take.

In a module of their own so that the provider and its backends both import them without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rvforge_debootstrap.distribution import distribution

VARIANTS = ("extract", "essential", "minbase", "standard")
CONFIGURE = ("auto", "binfmt", "vm", "first-boot", "none")
BACKENDS = ("python", "debootstrap", "mmdebstrap")
ARCH = "riscv64"


@dataclass
class DebootstrapOptions:
    """Options of the ``debootstrap`` provider.

    :param distribution: ``debian`` or ``ubuntu`` (:mod:`rvforge_debootstrap.distribution`).
    :param release: suite or codename (``trixie``, ``stable``, ``sid``; Ubuntu's ``noble``,
        ``questing``); default ``trixie``, for Ubuntu ``noble``.
    :param mirror: mirror URL or path (default: ``$RVFORGE_DEBIAN_MIRROR`` or
        ``$RVFORGE_UBUNTU_MIRROR``, else the host's apt sources).
    :param package: extra packages (repeatable); their dependencies come too.
    :param variant: ``extract``, ``essential``, ``minbase`` or ``standard``.
    :param configure: how maintainer scripts run: ``auto`` (at build time: ``binfmt``
        where it can, else ``vm``), ``binfmt`` (as root, through a qemu-riscv64
        binfmt_misc handler), ``vm``, ``first-boot`` (at every boot) or ``none``.
    :param backend: ``python``, ``debootstrap`` or ``mmdebstrap``.
    :param keyring: keyring that signs the suite (default: debian-archive-keyring, for
        Ubuntu ubuntu-keyring's).
    """

    release: str = ""
    mirror: str | None = None
    package: list[str] = field(default_factory=list)
    variant: str = "minbase"
    configure: str = "auto"
    backend: str = "python"
    keyring: Path | None = None
    distribution: str = "debian"

    def __post_init__(self) -> None:
        dist = distribution(self.distribution)
        self.release = self.release or dist.default_release
        if dist.name != "debian" and self.backend != "python":
            raise ValueError(f"--distribution {dist.name} builds with --backend python only")
        for name, allowed in (("variant", VARIANTS), ("configure", CONFIGURE),
                              ("backend", BACKENDS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}")
        packages = []
        for item in self.package:
            packages += [p for p in item.replace(",", " ").split() if p]
        self.package = packages
