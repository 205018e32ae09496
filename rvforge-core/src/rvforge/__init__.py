"""rvforge: build, audit and boot riscv64 root filesystems for QEMU.

Everything a plugin needs is importable from here; plugins never import each other. Besides
the names in ``__all__``, these library modules are public and stable:

* :mod:`rvforge.download` — verified, resumable, cached downloads (``fetch``, ``fetch_bytes``);
* :mod:`rvforge.archives` — tarballs and directories into a Tree, member by member;
* :mod:`rvforge.compression` — compression detection, streaming readers and writers;
* :mod:`rvforge.isa`, :mod:`rvforge.elf`, :mod:`rvforge.riscv_insn` — RISC-V ISA strings
  and implications, ELF facts, instruction classification;
* :mod:`rvforge.testing` — pytest fixtures and helpers for plugin authors.
"""

from __future__ import annotations

from rvforge.artifacts import Artifact, BootResult, RunResult
from rvforge.builtin.init_overlay import (
    CONTROL_PORT,
    INIT_SCRIPT,
    READY_MARKER,
    STDERR_PORT,
    STDOUT_PORT,
)
from rvforge.components import (
    Auditor,
    Component,
    Kernel,
    KernelSource,
    Launcher,
    NoOptions,
    Overlay,
    Packer,
    Provider,
)
from rvforge.context import BuildContext
from rvforge.errors import (
    AuditFailedError,
    BootFailedError,
    ChecksumMismatchError,
    ExitCode,
    InputError,
    PluginError,
    RvforgeError,
    ToolMissingError,
    UnknownComponentError,
    UnsafePathError,
    UsageError,
)
from rvforge.findings import FileRecord, Finding, Severity
from rvforge.hookspecs import hookimpl, hookspec
from rvforge.loading import load_path
from rvforge.machines import Machine
from rvforge.options import build_options
from rvforge.pipeline import Step, pack
from rvforge.progress import Progress
from rvforge.registry import Registry, build_registry
from rvforge.tree import (
    Content,
    Entry,
    EntryKind,
    HostFile,
    InlineBytes,
    Tree,
    check_symlink_target,
    normalize,
)

__all__ = [
    "CONTROL_PORT",
    "INIT_SCRIPT",
    "READY_MARKER",
    "STDERR_PORT",
    "STDOUT_PORT",
    "Artifact",
    "AuditFailedError",
    "Auditor",
    "BootFailedError",
    "BootResult",
    "BuildContext",
    "ChecksumMismatchError",
    "Component",
    "Content",
    "Entry",
    "EntryKind",
    "ExitCode",
    "FileRecord",
    "Finding",
    "HostFile",
    "InlineBytes",
    "InputError",
    "Kernel",
    "KernelSource",
    "Launcher",
    "Machine",
    "NoOptions",
    "Overlay",
    "Packer",
    "PluginError",
    "Progress",
    "Provider",
    "Registry",
    "RunResult",
    "RvforgeError",
    "Severity",
    "Step",
    "ToolMissingError",
    "Tree",
    "UnknownComponentError",
    "UnsafePathError",
    "UsageError",
    "build_options",
    "build_registry",
    "check_symlink_target",
    "hookimpl",
    "hookspec",
    "load_path",
    "normalize",
    "pack",
]
