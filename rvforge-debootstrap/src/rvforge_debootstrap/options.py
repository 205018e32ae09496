"""Options of the ``debootstrap`` provider and the values they take.

In a module of their own so that the provider and its backends both import them without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

VARIANTS = ("extract", "essential", "minbase", "standard")
CONFIGURE = ("auto", "binfmt", "vm", "first-boot", "none")
BACKENDS = ("python", "debootstrap", "mmdebstrap")
ARCH = "riscv64"


@dataclass
class DebootstrapOptions:
    """Options of the ``debootstrap`` provider.

    :param release: suite or codename (``trixie``, ``stable``, ``testing``, ``sid``).
    :param mirror: mirror URL or path (default: ``$RVFORGE_DEBIAN_MIRROR``, else the host's
        apt sources).
    :param package: extra packages (repeatable); their dependencies come too.
    :param variant: ``extract``, ``essential``, ``minbase`` or ``standard``.
    :param configure: how maintainer scripts run: ``auto`` (at build time: ``binfmt``
        where it can, else ``vm``), ``binfmt`` (as root, through a qemu-riscv64
        binfmt_misc handler), ``vm``, ``first-boot`` (at every boot) or ``none``.
    :param backend: ``python``, ``debootstrap`` or ``mmdebstrap``.
    :param keyring: keyring that signs the suite (default: debian-archive-keyring).
    """

    release: str = "trixie"
    mirror: str | None = None
    package: list[str] = field(default_factory=list)
    variant: str = "minbase"
    configure: str = "auto"
    backend: str = "python"
    keyring: Path | None = None

    def __post_init__(self) -> None:
        for name, allowed in (("variant", VARIANTS), ("configure", CONFIGURE),
                              ("backend", BACKENDS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}")
        packages = []
        for item in self.package:
            packages += [p for p in item.replace(",", " ").split() if p]
        self.package = packages
