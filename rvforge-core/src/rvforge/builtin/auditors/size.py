"""The ``size`` auditor: does the unpacked initramfs fit the machine's memory?

While the kernel unpacks an initramfs it holds the (compressed) archive and the unpacked
files in RAM at once, and the files stay there (tmpfs/ramfs cannot swap). The tree's
unpacked size — every file rounded up to 4 KiB pages, plus one page per directory, link
and node — must therefore leave room for the archive, the kernel and the programs:

* above :data:`ERROR_FRACTION` of ``memory_mb`` it is an error (``size-exceeds-memory``);
* above :data:`WARNING_FRACTION` a warning.

A 935 MB tree in a 1 GiB VM is an error; Alpine's 8 MB in 2 GiB passes silently. Builds
that write a disk image (``-o image.ext4``) are not initramfs and are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator

from rvforge.components import Auditor
from rvforge.context import BuildContext
from rvforge.findings import Finding, FindingCode, Severity
from rvforge.machines import Machine
from rvforge.tree import EntryKind, Tree

PAGE = 4096
ERROR_FRACTION = 0.5
"""Unpacked tree above this share of RAM: error (archive + files + kernel do not fit)."""
WARNING_FRACTION = 0.35
"""Unpacked tree above this share of RAM: warning (little room left to run anything)."""


def unpacked_size(tree: Tree) -> int:
    """Bytes the tree occupies once unpacked into a RAM filesystem."""
    total = 0
    for entry in tree:
        if entry.kind is EntryKind.FILE:
            total += -(-entry.size // PAGE) * PAGE
        elif entry.kind is not EntryKind.HARDLINK:
            total += PAGE
    return total


class SizeAuditor(Auditor):
    """The unpacked initramfs against the machine's memory."""

    name = "size"
    summary = "the unpacked initramfs fits the machine's memory with room to boot"
    codes = (
        FindingCode("size-exceeds-memory",
                    "The unpacked initramfs does not fit the machine's memory",
                    "give the machine more memory (--machine / [machines]) or write a disk image "
                    "(-o image.ext4)"),
    )

    def audit(self, tree: Tree, machine: Machine, ctx: BuildContext) -> Iterator[Finding]:
        if (ctx.artifact_kind or "initramfs") != "initramfs":
            return
        size = unpacked_size(tree)
        memory = machine.memory_mb * 1024 * 1024
        mib = size / (1024 * 1024)
        details = {"unpacked_bytes": size, "memory_mb": machine.memory_mb}
        if size > ERROR_FRACTION * memory:
            yield Finding(
                Severity.ERROR, "size-exceeds-memory", None,
                f"the unpacked initramfs is {mib:.0f} MiB, more than "
                f"{ERROR_FRACTION:.0%} of {machine.name}'s {machine.memory_mb} MiB of RAM "
                "(the kernel holds the archive and the unpacked files at once): give the "
                "machine more memory, trim the tree, or write a disk image (-o image.ext4)",
                details=details)
        elif size > WARNING_FRACTION * memory:
            yield Finding(
                Severity.WARNING, "size-exceeds-memory", None,
                f"the unpacked initramfs is {mib:.0f} MiB, over {WARNING_FRACTION:.0%} of "
                f"{machine.name}'s {machine.memory_mb} MiB of RAM: little is left for "
                "programs", details=details)
