"""Entry point of rvforge-debootstrap (group `rvforge`): registers its components."""

from __future__ import annotations

from collections.abc import Callable

from rvforge import KernelSource, hookimpl

from rvforge_debootstrap.kernel import DebianKernelSource


@hookimpl
def rvforge_register_kernels(register: Callable[[type[KernelSource]], None]) -> None:
    register(DebianKernelSource)
