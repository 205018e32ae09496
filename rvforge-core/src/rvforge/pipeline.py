"""The build pipeline: provider → overlays → auditors → packer, one call each.

:func:`build` takes a resolved :class:`~rvforge.spec.BuildSpec` and returns a
:class:`~rvforge.spec.BuildReport`. Data flows one way. Error findings stop the build
before packing unless the spec says otherwise; the artifact is written under a temporary
name and renamed into place at the end, so a failed or interrupted build leaves no output
file.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rvforge.artifacts import Artifact
from rvforge.auto_machine import machine_for_tree
from rvforge.components import Auditor, Overlay, Packer, Provider
from rvforge.context import BuildContext
from rvforge.errors import AuditFailedError, InputError, RvforgeError, UsageError
from rvforge.findings import FileRecord, Finding, Severity
from rvforge.leftovers import part_path, sweep_stale_parts
from rvforge.machines import Machine
from rvforge.registry import Registry

# the spec types lived here before rvforge-core 0.2; kept importable for one release
from rvforge.spec import AuditReport, BuildReport, BuildSpec, Step
from rvforge.tree import Tree

__all__ = ["AuditReport", "BuildReport", "BuildSpec", "Step", "apply_overlays", "audit",
           "build", "pack", "provide", "timed"]


def provide(registry: Registry, step: Step, ctx: BuildContext) -> Tree:
    provider: Provider[Any] = registry.providers.get(step.name)()
    return provider.provide(step.options, ctx)


def apply_overlays(registry: Registry, tree: Tree, steps: Iterable[Step], ctx: BuildContext,
                   timings: dict[str, float] | None = None) -> None:
    for step in steps:
        with timed({} if timings is None else timings, f"overlay:{step.name}"):
            overlay: Overlay[Any] = registry.overlays.get(step.name)()
            ctx.log.info("overlay", overlay=step.name)
            overlay.apply(tree, step.options, ctx)


def audit(registry: Registry, tree: Tree, machine: Machine, ctx: BuildContext,
          auditors: list[str] | None = None) -> AuditReport:
    """Run ``auditors`` (default: every registered one) on ``tree`` for ``machine``."""
    names = auditors if auditors is not None else registry.auditors.names()
    report = AuditReport(machine, auditors=list(names))
    for name in names:
        auditor: Auditor = registry.auditors.get(name)()
        report.codes.update((code.code, code) for code in auditor.codes)
        for item in auditor.audit(tree, machine, ctx):
            if isinstance(item, Finding):
                report.findings.append(dataclasses.replace(item, auditor=name))
            elif isinstance(item, FileRecord):
                report.files.setdefault(item.path, {"path": item.path}).update(item.facts)
    return report


def pack(registry: Registry, tree: Tree, step: Step, fmt: str, output: Path,
         ctx: BuildContext) -> Artifact:
    """Pack ``tree`` to a temporary name next to ``output``, then rename it into place."""
    packer_cls: type[Packer] = registry.packers.get(step.name)
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{output.parent}: cannot create the output directory "
                         f"({error.strerror})") from None
    if output.is_dir() and not output.is_symlink():
        raise UsageError(f"{output}: is a directory; give -o a file name")
    _refuse_special(output)
    sweep_stale_parts(output.parent)
    temp = part_path(output)
    try:
        packer_cls().pack(tree, temp, fmt, ctx)
        artifact = Artifact.from_file(temp, packer_cls.kind, fmt)
        _refuse_special(output)  # again: it may have appeared while packing
        os.replace(temp, output)
    except RvforgeError as error:
        _name_the_output(error, temp, output)
        raise
    except PermissionError as error:
        raise UsageError(f"{output}: cannot write ({error.strerror}); choose another -o"
                         ) from None
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise InputError(f"{output}: cannot write ({error.strerror}); free space on its "
                         "disk or choose another -o") from None
    finally:
        temp.unlink(missing_ok=True)
    return dataclasses.replace(artifact, path=output)


def _name_the_output(error: RvforgeError, temp: Path, output: Path) -> None:
    """Make ``error`` name ``output`` where it names the temporary file (the user never
    asked for ``.NAME.PID.part``)."""
    text = str(error)
    if temp.name in text:
        error.args = (text.replace(str(temp), str(output)).replace(temp.name, output.name),)


def _refuse_special(output: Path) -> None:
    """Refuse an existing ``output`` that is not a regular file: the final rename would
    replace a device node, fifo or symlink (as root, ``-o /dev/null`` the host's node)."""
    try:
        mode = os.lstat(output).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode) \
            else "a device, fifo or socket"
        raise UsageError(f"{output}: exists and is {kind}, not a regular file; rvforge "
                         "replaces only regular files (choose another -o)")


@contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Add the seconds the ``with`` block takes to ``timings[step]`` (summed over repeats)."""
    start = time.monotonic()
    try:
        yield
    finally:
        timings[step] = timings.get(step, 0.0) + time.monotonic() - start


def build(registry: Registry, spec: BuildSpec, ctx: BuildContext) -> BuildReport:
    """Run the whole pipeline for ``spec``; raise :class:`AuditFailedError` on audit errors
    (unless ``spec.audit`` is ``warn-only`` or ``off``).

    Steps: ``rvforge_build_start``, the provider, the overlays, for ``--machine auto``
    (``spec.machine is None``) the pick of the machine from the final tree (the hooks after
    it, the audit and the report see a copy of the spec with it), ``rvforge_build_tree_ready``,
    the audit, the packer, ``rvforge_build_finish``. Components and hooks receive ``ctx`` as
    :meth:`BuildContext.for_build` derives it, with the values the spec fixes (deep audit,
    artifact kind)."""
    hook = registry.pm.hook
    timings: dict[str, float] = {}
    spec = dataclasses.replace(spec, artifact_kind=registry.packers.get(spec.packer.name).kind)
    ctx = ctx.for_build(spec)
    hook.rvforge_build_start(spec=spec, ctx=ctx)

    with timed(timings, "provide"):
        ctx.log.info("provider", provider=spec.provider.name)
        tree = provide(registry, spec.provider, ctx)
    apply_overlays(registry, tree, spec.overlays, ctx, timings)
    machine = spec.machine
    if machine is None:
        with timed(timings, "machine"):
            machine = machine_for_tree(tree, registry, ctx)
        spec = dataclasses.replace(spec, machine=machine)
    hook.rvforge_build_tree_ready(tree=tree, spec=spec, ctx=ctx)

    report = AuditReport(machine)
    if spec.audit != "off":
        with timed(timings, "audit"):
            report = audit(registry, tree, machine, ctx, spec.auditors)
        for finding in report.sorted_findings():
            if finding.severity is not Severity.INFO:
                log = ctx.log.error if finding.severity is Severity.ERROR else ctx.log.warning
                log(finding.message, code=finding.code, path=finding.path)
        if report.errors and spec.audit == "enforce":
            raise AuditFailedError(
                f"audit found {len(report.errors)} error(s) for machine "
                f"{machine.name!r} ({machine.isa}); nothing was packed. Fix them, "
                "pick a machine that has what they need (--machine), or pass "
                "--audit-warn-only / --no-audit"
            )

    with timed(timings, "pack"):
        artifact = pack(registry, tree, spec.packer, spec.format, spec.output, ctx)
    result = BuildReport(spec, artifact, tree.stats(), report, timings)
    hook.rvforge_build_finish(report=result, ctx=ctx)
    return result
