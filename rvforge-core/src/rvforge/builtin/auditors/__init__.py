"""Built-in auditors: ``isa``, ``linkage`` and ``size`` (one module each), registered
with the same hook third-party auditors use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rvforge.components import Auditor
from rvforge.hookspecs import hookimpl

from .isa import IsaAuditor
from .linkage import LinkageAuditor
from .size import ARTIFACT_KIND_SETTING, SizeAuditor

if TYPE_CHECKING:
    from rvforge.context import BuildContext
    from rvforge.pipeline import BuildSpec


@hookimpl
def rvforge_register_auditors(register: Callable[[type[Auditor]], None]) -> None:
    register(IsaAuditor)
    register(LinkageAuditor)
    register(SizeAuditor)


@hookimpl
def rvforge_build_start(spec: BuildSpec, ctx: BuildContext) -> None:
    """Tell the size auditor what the build writes (a disk image is not unpacked in RAM)."""
    packer = ctx.registry.packers.get(spec.packer.name)
    ctx.settings[ARTIFACT_KIND_SETTING] = packer.kind
