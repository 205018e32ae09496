"""rvforge: build, audit and boot riscv64 root filesystems for QEMU.

Everything a plugin needs is importable from here, and nothing is loaded until it is used
(:pep:`562`): ``import rvforge`` costs no plugin machinery, no logging and no HTTP. The
libraries are public too, each importable on its own:

* :mod:`rvforge.formats` — tar, cpio, ext4, host directories, compression, sniffing;
* :mod:`rvforge.riscv` — the ELF reader, ISA strings and implications, the instruction sweep;
* :mod:`rvforge.net` — the HTTP session and verified, resumable, cached downloads;
* :mod:`rvforge.protocol` — the boot protocol between ``/init`` and launchers;
* :mod:`rvforge.numbers` — numbers, modes and versions' digits read from untrusted text
  (ASCII only, bounded);
* :mod:`rvforge.userfiles` — files the user names (``~`` expanded, regular files only, read
  without blocking and with a cap);
* :mod:`rvforge.testing` — pytest fixtures for plugin authors (``pytest -p rvforge.testing``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "rvforge.artifacts": ("Artifact", "BootResult", "RunResult"),
    "rvforge.auto_machine": ("machine_for_image",),
    "rvforge.components": ("Auditor", "Component", "Kernel", "KernelSource", "Launcher",
                           "LaunchSession", "NoOptions", "Overlay", "Packer", "Provider"),
    "rvforge.config": ("load_config",),
    "rvforge.context": ("BuildContext", "default_cache_dir"),
    "rvforge.errors": ("AuditFailedError", "BootFailedError", "ChecksumMismatchError",
                       "ExitCode", "InputError", "PluginError", "RvforgeError",
                       "ToolMissingError", "UnbootableImageError", "UnknownComponentError",
                       "UnsafePathError", "UsageError"),
    "rvforge.findings": ("FileRecord", "Finding", "FindingCode", "Severity"),
    "rvforge.hookspecs": ("hookimpl", "hookspec"),
    "rvforge.initcheck": ("InitProblem", "check_image", "init_problem"),
    "rvforge.cli.common": ("launcher_flags_command", "launcher_values"),
    "rvforge.launching": ("Launch", "launcher_options", "prepare_launch"),
    "rvforge.loading": ("load_path",),
    "rvforge.log": ("get_logger",),
    "rvforge.machine_matrix": ("MachineRun", "is_matrix", "matrix_machines", "run_matrix"),
    "rvforge.machines": ("Machine",),
    "rvforge.options": ("OptionSpec", "build_options", "declared_options", "option"),
    "rvforge.pipeline": ("pack",),
    "rvforge.prestart": ("Prestart",),
    "rvforge.processes": ("Cancellation",),
    "rvforge.progress": ("Progress", "Task"),
    "rvforge.protocol": ("CONTROL_PORT", "INIT_SCRIPT", "READY_MARKER", "STDERR_PORT",
                         "STDOUT_PORT"),
    "rvforge.registry": ("Registry", "build_registry"),
    "rvforge.shared_files": ("SharedDirectory",),
    "rvforge.spec": ("AuditReport", "BuildReport", "BuildSpec", "Step"),
    "rvforge.tree": ("Content", "Entry", "EntryKind", "FileIdentity", "FileWindow", "HostFile",
                     "InlineBytes", "Tree", "check_symlink_target", "normalize"),
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Artifact",
    "AuditFailedError",
    "AuditReport",
    "Auditor",
    "BootFailedError",
    "BootResult",
    "BuildContext",
    "BuildReport",
    "BuildSpec",
    "CONTROL_PORT",
    "Cancellation",
    "ChecksumMismatchError",
    "Component",
    "Content",
    "Entry",
    "EntryKind",
    "ExitCode",
    "FileIdentity",
    "FileRecord",
    "FileWindow",
    "Finding",
    "FindingCode",
    "HostFile",
    "INIT_SCRIPT",
    "InitProblem",
    "InlineBytes",
    "InputError",
    "Kernel",
    "KernelSource",
    "Launch",
    "LaunchSession",
    "Launcher",
    "Machine",
    "MachineRun",
    "NoOptions",
    "OptionSpec",
    "Overlay",
    "Packer",
    "PluginError",
    "Prestart",
    "Progress",
    "Provider",
    "READY_MARKER",
    "Registry",
    "RunResult",
    "RvforgeError",
    "STDERR_PORT",
    "STDOUT_PORT",
    "Severity",
    "SharedDirectory",
    "Step",
    "Task",
    "ToolMissingError",
    "Tree",
    "UnbootableImageError",
    "UnknownComponentError",
    "UnsafePathError",
    "UsageError",
    "build_options",
    "build_registry",
    "check_image",
    "check_symlink_target",
    "declared_options",
    "default_cache_dir",
    "get_logger",
    "hookimpl",
    "hookspec",
    "init_problem",
    "is_matrix",
    "launcher_flags_command",
    "launcher_options",
    "launcher_values",
    "load_config",
    "load_path",
    "machine_for_image",
    "matrix_machines",
    "normalize",
    "option",
    "pack",
    "prepare_launch",
    "run_matrix",
]


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'rvforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolved once; later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from rvforge.artifacts import Artifact, BootResult, RunResult
    from rvforge.auto_machine import machine_for_image
    from rvforge.cli.common import launcher_flags_command, launcher_values
    from rvforge.components import (
        Auditor,
        Component,
        Kernel,
        KernelSource,
        Launcher,
        LaunchSession,
        NoOptions,
        Overlay,
        Packer,
        Provider,
    )
    from rvforge.config import load_config
    from rvforge.context import BuildContext, default_cache_dir
    from rvforge.errors import (
        AuditFailedError,
        BootFailedError,
        ChecksumMismatchError,
        ExitCode,
        InputError,
        PluginError,
        RvforgeError,
        ToolMissingError,
        UnbootableImageError,
        UnknownComponentError,
        UnsafePathError,
        UsageError,
    )
    from rvforge.findings import FileRecord, Finding, FindingCode, Severity
    from rvforge.hookspecs import hookimpl, hookspec
    from rvforge.initcheck import InitProblem, check_image, init_problem
    from rvforge.launching import Launch, launcher_options, prepare_launch
    from rvforge.loading import load_path
    from rvforge.log import get_logger
    from rvforge.machine_matrix import MachineRun, is_matrix, matrix_machines, run_matrix
    from rvforge.machines import Machine
    from rvforge.options import OptionSpec, build_options, declared_options, option
    from rvforge.pipeline import pack
    from rvforge.prestart import Prestart
    from rvforge.processes import Cancellation
    from rvforge.progress import Progress, Task
    from rvforge.protocol import (
        CONTROL_PORT,
        INIT_SCRIPT,
        READY_MARKER,
        STDERR_PORT,
        STDOUT_PORT,
    )
    from rvforge.registry import Registry, build_registry
    from rvforge.shared_files import SharedDirectory
    from rvforge.spec import AuditReport, BuildReport, BuildSpec, Step
    from rvforge.tree import (
        Content,
        Entry,
        EntryKind,
        FileIdentity,
        FileWindow,
        HostFile,
        InlineBytes,
        Tree,
        check_symlink_target,
        normalize,
    )
