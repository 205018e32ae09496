"""The component families plugins contribute: providers, overlays, auditors, packers,
launchers and kernel sources.

A component is a class with a ``name`` and a one-line ``summary``, and an ``Options``
dataclass declaring the settings it takes (from CLI flags and ``rvforge.toml``). Plugins
subclass these bases and hand the classes to the ``register`` callback of the matching
``rvforge_register_*`` hook. rvforge instantiates a component with no arguments and passes
its options to each call.

The bases are abstract: the registry refuses a class that leaves one of its family's
abstract methods unimplemented, naming the plugin. Bases that take options are generic in
their type, so ``class MyProvider(Provider[MyOptions])`` type-checks
``provide(self, options: MyOptions, ctx)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from rvforge.errors import UsageError
from rvforge.options import relative_to

if TYPE_CHECKING:
    from rvforge.artifacts import Artifact, BootResult, RunResult
    from rvforge.context import BuildContext
    from rvforge.findings import FileRecord, Finding, FindingCode
    from rvforge.machines import Machine
    from rvforge.shared_files import SharedDirectory
    from rvforge.tree import Tree


@dataclass
class NoOptions:
    """Options of a component that takes none."""


OptionsT = TypeVar("OptionsT")
"""The type of a component's options (its ``Options`` dataclass)."""


class Component(ABC):
    """Common shape of every component class."""

    name: ClassVar[str]
    """Unique within its family: what users type (``--provider alpine``)."""
    summary: ClassVar[str] = ""
    """One line for ``rvforge plugins`` and ``--help``."""
    Options: ClassVar[type] = NoOptions
    """A dataclass of the settings the component accepts."""
    cache_entries: ClassVar[Mapping[str, str]] = {}
    """What the component keeps in the cache directory, for ``rvforge cache``: a glob
    relative to it (``debian/debs/*``; each path it matches is one entry) → the kind of
    entry (``downloads``, ``kernels``, ``unpacked``...)."""


class Provider(Component, Generic[OptionsT]):
    """Produces the base :class:`~rvforge.Tree` (download, verify, cache, unpack)."""

    @abstractmethod
    def provide(self, options: OptionsT, ctx: BuildContext) -> Tree:
        """Return the base tree described by ``options``."""

    def describe(self, options: OptionsT) -> str:
        """A short label for default output names (``alpine-3.20.3``): name and release."""
        release = getattr(options, "release", None)
        return f"{self.name}-{release}" if release else self.name

    def default_machine(self, options: OptionsT) -> str | None:
        """The machine profile images of ``options`` are meant for when the user names none
        (an RVA23 release: an RVA23 machine); ``None``: the registry's default."""
        return None


class Overlay(Component, Generic[OptionsT]):
    """Changes the tree: adds host files, writes ``/init``, installs packages."""

    @abstractmethod
    def apply(self, tree: Tree, options: OptionsT, ctx: BuildContext) -> None:
        """Change ``tree`` in place as ``options`` say."""


class Auditor(Component):
    """Reads the tree and the target machine, yields findings (and optional file facts)."""

    codes: ClassVar[tuple[FindingCode, ...]] = ()
    """The finding codes it reports, each with a one-line description and the fix: SARIF
    output describes its rules with them, the text report closes with the fixes."""

    @abstractmethod
    def audit(
        self, tree: Tree, machine: Machine, ctx: BuildContext
    ) -> Iterable[Finding | FileRecord]:
        """Yield a :class:`~rvforge.Finding` per problem (``ctx.deep`` asks for the
        instruction sweep too) and, optionally, :class:`~rvforge.FileRecord` facts."""


class Packer(Component):
    """Writes the tree as an artifact file."""

    suffixes: ClassVar[tuple[str, ...]] = ()
    """Output name endings this packer is chosen for (``.cpio.gz``, ``.cpio.zst``...)."""
    kind: ClassVar[str] = "initramfs"
    """The :attr:`~rvforge.Artifact.kind` of what it writes."""

    @abstractmethod
    def pack(self, tree: Tree, output: Path, fmt: str, ctx: BuildContext) -> None:
        """Write ``tree`` to ``output`` in format ``fmt`` (a suffix without its dot,
        ``cpio.gz``). ``output`` is a temporary name; the pipeline hashes and renames it."""


class Launcher(Component, Generic[OptionsT]):
    """Boots an artifact on a machine and reports what happened.

    The launcher's ``Options`` dataclass declares every setting it takes, each field made
    with :func:`rvforge.option` (help text, metavar, the commands it is a flag of):
    ``rvforge boot``/``rvforge run`` derive their flags from the installed launchers'
    declarations, the pytest plugin its ``--rvforge-*`` options, and a flag the chosen
    launcher does not declare is exit 2 naming the flag and the launcher. Flags the user
    did not give are left out, so the dataclass's defaults apply. Fields of these names
    mean the same to every launcher: ``kernel`` (a kernel image path or kernel source
    name), ``timeout`` (seconds), ``console_log`` (a :class:`~pathlib.Path`), ``memory``
    (MB) and ``cpus`` overriding the machine profile's, ``interactive`` (``boot
    --interactive``: attach the console to the terminal) and ``stream`` (set by rvforge,
    ``True`` for ``run``: copy the command's output to rvforge's stdout/stderr as it
    arrives).
    """

    supports_session: ClassVar[bool] = False
    """Whether :meth:`session` keeps a guest running for many commands (the pytest
    plugin's fixtures need it)."""

    def context_settings(self, options: OptionsT) -> Mapping[str, Mapping[str, object]]:
        """``[plugin.NAME]`` settings ``options`` stand for (``--qemu PATH``: QEMU's
        binary), laid over the config's before the machine is resolved, so that
        :meth:`machine_isa` and :meth:`host_tool`, which see only the context, follow
        them; default none."""
        return {}

    @classmethod
    def profile_settings(cls, settings: Mapping[str, Any], base: Path) -> dict[str, Any]:
        """A machine profile's launcher settings (``[machines.X]`` of a config file in
        directory ``base``) with their relative paths made relative to ``base``, as the
        file's other paths are. Default: each setting named like an ``Options`` field
        declared as a :class:`~pathlib.Path` (``qemu = "bin/qemu"``); a bare name, without
        a slash, stays as it is (a program on PATH)."""
        paths = {key: value for key, value in settings.items()
                 if isinstance(value, str) and "/" in value}
        return {**settings, **relative_to(cls.Options, paths, base)}

    def machine_isa(self, machine: Machine, ctx: BuildContext) -> str:
        """The ISA string ``machine``'s CPU implements (default: ``machine.isa``)."""
        return machine.isa

    def host_tool(self, machine: Machine, ctx: BuildContext) -> str:
        """What would run ``machine`` here (``QEMU 10.0.2 (/usr/bin/qemu-system-riscv64)``),
        for ``rvforge machines``; ``""`` when there is nothing to say."""
        return ""

    def shared_directories(self, machine: Machine, options: OptionsT
                           ) -> Sequence[SharedDirectory]:
        """The host directories the guest will see (``--share``, the profile's), so
        ``--machine auto`` counts the ELF files the command runs from them; default none."""
        return ()

    @abstractmethod
    def boot(self, artifact: Artifact, machine: Machine, options: OptionsT,
             ctx: BuildContext) -> BootResult:
        """Boot ``artifact`` on ``machine`` until rvforge's ready marker
        (:data:`rvforge.protocol.READY_MARKER`) or ``options.timeout``; return whether it
        came (``ok``), and the console's tail and diagnosis when not."""

    @abstractmethod
    def run(self, artifact: Artifact, machine: Machine, argv: list[str], options: OptionsT,
            ctx: BuildContext) -> RunResult:
        """Boot ``artifact``, run ``argv`` in the guest and return its exit status and
        output (``status`` is ``None`` if it never finished)."""

    def session(self, artifact: Artifact, machine: Machine, options: OptionsT,
                ctx: BuildContext) -> AbstractContextManager[LaunchSession]:
        """A ``with`` block holding ``artifact`` booted on ``machine``, yielding an object
        whose ``run(argv, timeout=None)`` returns a :class:`~rvforge.RunResult` per
        command; the guest powers off at the block's end. Launchers that can set
        :attr:`supports_session`; the default refuses with a :class:`~rvforge.UsageError`.
        """
        raise UsageError(f"launcher {self.name!r} cannot keep a guest running for many "
                         "commands; use a machine whose launcher can (qemu-virt)")


class LaunchSession(Protocol):
    """What :meth:`Launcher.session` yields: a running guest that takes commands."""

    def run(self, argv: list[str] | str, *, timeout: float | None = None) -> RunResult:
        """Run ``argv`` (words, or one shell script) and return its status and output.

        A session may also take ``stdout=`` and ``stderr=`` callbacks (``Callable[[bytes],
        None]``), called with the command's output as it arrives (the result still holds
        all of it): ``rvforge exec`` streams through them when the session's ``run`` has
        them.
        """
        ...


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


class KernelSource(Component, Generic[OptionsT]):
    """Finds or fetches a kernel (``--kernel NAME``)."""

    @abstractmethod
    def fetch(self, options: OptionsT, ctx: BuildContext) -> Kernel:
        """Return the kernel ``options`` describe, downloading it into the cache if
        needed."""

    def debug_symbols(self, kernel: Kernel, options: OptionsT, ctx: BuildContext
                      ) -> Path | None:
        """The ELF ``vmlinux`` with symbols of ``kernel`` (one this source fetched), for
        gdb (``--gdb-symbols``), downloading it if needed; ``None`` when the source has
        none (the default)."""
        return None

