"""Entry point of rvforge-alpine (group `rvforge`): registers its components."""

from __future__ import annotations

from collections.abc import Callable

from rvforge import Provider, hookimpl

from rvforge_alpine.provider import AlpineProvider


@hookimpl
def rvforge_register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(AlpineProvider)
