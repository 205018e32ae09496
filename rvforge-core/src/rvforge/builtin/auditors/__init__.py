"""Built-in auditors: ``isa``, ``linkage`` and ``size`` (one module each), registered
with the same hook third-party auditors use."""

from __future__ import annotations

from collections.abc import Callable

from rvforge.components import Auditor
from rvforge.hookspecs import hookimpl

from .isa import IsaAuditor
from .linkage import LinkageAuditor
from .size import SizeAuditor


@hookimpl
def rvforge_register_auditors(register: Callable[[type[Auditor]], None]) -> None:
    register(IsaAuditor)
    register(LinkageAuditor)
    register(SizeAuditor)
