"""rvforge: build, audit and boot riscv64 root filesystems for QEMU.

Everything a plugin needs is importable from here; plugins never import each other and
never reach into rvforge's submodules for anything not listed in ``__all__``.
"""

from __future__ import annotations

from rvforge.artifacts import Artifact, BootResult, RunResult
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
from rvforge.machines import Machine
from rvforge.tree import Content, Entry, EntryKind, HostFile, InlineBytes, Tree

__all__ = [
    "Artifact", "AuditFailedError", "Auditor", "BootFailedError", "BootResult",
    "BuildContext", "ChecksumMismatchError", "Component", "Content", "Entry", "EntryKind",
    "ExitCode", "FileRecord", "Finding", "HostFile", "InlineBytes", "InputError", "Kernel",
    "KernelSource", "Launcher", "Machine", "NoOptions", "Overlay", "Packer", "PluginError",
    "Provider", "RunResult", "RvforgeError", "Severity", "ToolMissingError", "Tree",
    "UnknownComponentError", "UnsafePathError", "UsageError", "hookimpl", "hookspec",
]
