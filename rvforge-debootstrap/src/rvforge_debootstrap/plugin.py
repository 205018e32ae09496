"""Entry point of rvforge-debootstrap (group `rvforge`): registers its components."""

from __future__ import annotations

from collections.abc import Callable

from rvforge import KernelSource, Provider, hookimpl

from rvforge_debootstrap.kernel import DebianKernelSource
from rvforge_debootstrap.provider import DebootstrapProvider


@hookimpl
def rvforge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(DebootstrapProvider)


@hookimpl
def rvforge_register_kernels(register: Callable[[type[KernelSource]], None]) -> None:
    register(DebianKernelSource)
