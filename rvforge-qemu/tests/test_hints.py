"""A fix names the option of the front end that asked: ``--kernel`` on the command line,
``--rvforge-kernel`` in the pytest plugin (``BuildContext.flag_prefix``)."""

from __future__ import annotations

import dataclasses

import pytest

from rvforge import BuildContext, InputError, UsageError
from rvforge.net.download import fetch_bytes

from rvforge_qemu.kernels import resolve_kernel


@pytest.mark.parametrize("prefix", ["--", "--rvforge-"])
def test_an_unknown_kernel_source_names_the_askers_option(ctx: BuildContext,
                                                          prefix: str) -> None:
    asking = dataclasses.replace(ctx, flag_prefix=prefix)
    with pytest.raises(UsageError) as raised:
        resolve_kernel("nosuch", asking)
    assert str(raised.value) == (f"no kernel source 'nosuch' for {prefix}kernel nosuch: known "
                                 f"sources: debian; or pass {prefix}kernel PATH")


def test_offline_names_the_askers_option(ctx: BuildContext) -> None:
    asking = dataclasses.replace(ctx, flag_prefix="--rvforge-", offline=True)
    with pytest.raises(InputError, match="needs the network and --rvforge-offline was given"):
        fetch_bytes("http://127.0.0.1:9/index", asking)
