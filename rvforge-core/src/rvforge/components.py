"""The component families plugins contribute: providers, overlays, auditors, packers,
launchers and kernel sources.

A component is a class with a ``name`` and a one-line ``summary``, and an ``Options``
dataclass declaring the settings it takes (from CLI flags and ``rvforge.toml``). Plugins
subclass these bases and hand the classes to the ``register`` callback of the matching
``rvforge_register_*`` hook. rvforge instantiates a component with no arguments and passes
its options to each call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from rvforge.artifacts import Artifact, BootResult, RunResult
    from rvforge.context import BuildContext
    from rvforge.findings import FileRecord, Finding
    from rvforge.machines import Machine
    from rvforge.tree import Tree


@dataclass
class NoOptions:
    """Options of a component that takes none."""


class Component:
    """Common shape of every component class."""

    name: ClassVar[str]
    """Unique within its family: what users type (``--provider alpine``)."""
    summary: ClassVar[str] = ""
    """One line for ``rvforge plugins`` and ``--help``."""
    Options: ClassVar[type] = NoOptions
    """A dataclass of the settings the component accepts."""


class Provider(Component):
    """Produces the base :class:`~rvforge.Tree` (download, verify, cache, unpack)."""

    def provide(self, options: object, ctx: BuildContext) -> Tree:
        """Return the base tree described by ``options``."""
        raise NotImplementedError

    def describe(self, options: object) -> str:
        """A short label for default output names (``alpine-3.20.3``): name and release."""
        release = getattr(options, "release", None)
        return f"{self.name}-{release}" if release else self.name


class Overlay(Component):
    """Changes the tree: adds host files, writes ``/init``, installs packages."""

    def apply(self, tree: Tree, options: object, ctx: BuildContext) -> None:
        raise NotImplementedError


class Auditor(Component):
    """Reads the tree and the target machine, yields findings (and optional file facts)."""

    def audit(
        self, tree: Tree, machine: Machine, ctx: BuildContext
    ) -> Iterable[Finding | FileRecord]:
        raise NotImplementedError


class Packer(Component):
    """Writes the tree as an artifact file."""

    suffixes: ClassVar[tuple[str, ...]] = ()
    """Output name endings this packer is chosen for (``.cpio.gz``, ``.cpio.zst``...)."""
    kind: ClassVar[str] = "initramfs"
    """The :attr:`~rvforge.Artifact.kind` of what it writes."""

    def pack(self, tree: Tree, output: Path, fmt: str, ctx: BuildContext) -> None:
        """Write ``tree`` to ``output`` in format ``fmt`` (a suffix without its dot,
        ``cpio.gz``). ``output`` is a temporary name; the pipeline hashes and renames it."""
        raise NotImplementedError


class Launcher(Component):
    """Boots an artifact on a machine and reports what happened."""

    def machine_isa(self, machine: Machine, ctx: BuildContext) -> str:
        """The ISA string ``machine``'s CPU implements (default: ``machine.isa``)."""
        return machine.isa

    def host_tool(self, machine: Machine, ctx: BuildContext) -> str:
        """What would run ``machine`` here (``QEMU 10.0.2 (/usr/bin/qemu-system-riscv64)``),
        for ``rvforge machines``; ``""`` when there is nothing to say."""
        return ""

    def boot(self, artifact: Artifact, machine: Machine, options: object,
             ctx: BuildContext) -> BootResult:
        raise NotImplementedError

    def run(self, artifact: Artifact, machine: Machine, argv: list[str], options: object,
            ctx: BuildContext) -> RunResult:
        raise NotImplementedError


@dataclass(frozen=True)
class Kernel:
    """A kernel a launcher can boot.

    :param image: the kernel image file (``-kernel``).
    :param version: its release string (``6.12.57+deb13-riscv64``), if known.
    :param modules: a host directory holding ``lib/modules/<version>`` for it, if any.
    """

    image: Path
    version: str = ""
    modules: Path | None = None


class KernelSource(Component):
    """Finds or fetches a kernel (``--kernel NAME``)."""

    def fetch(self, options: object, ctx: BuildContext) -> Kernel:
        raise NotImplementedError


FAMILIES: dict[str, type[Component]] = {
    "provider": Provider,
    "overlay": Overlay,
    "auditor": Auditor,
    "packer": Packer,
    "launcher": Launcher,
    "kernel": KernelSource,
}
"""Component families by name, as used in messages and ``rvforge plugins``."""
