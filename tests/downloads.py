"""What the tests download, in one place: the tests' fixtures and ``.ci/seed_test_cache.py``
(run by ``make test-cache`` before ``make test``) fetch through these, into the tests' own
cache (``build/test-cache``, see the root ``conftest.py``), so CI downloads each once."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rvforge.context import BuildContext

WHEELS = ("markupsafe==3.0.4", "msgpack==1.2.4", "charset-normalizer==3.5.3")
"""Small real riscv64 wheels on PyPI (CPython 3.11, manylinux_2_31_riscv64)."""
PIP_TARGET = ("--platform", "manylinux_2_31_riscv64", "--python-version", "3.11",
              "--implementation", "cp", "--abi", "cp311")
DEBS = ("libzstd1", "busybox-static")
"""The ``.deb`` files tests/test_package_audit.py audits."""
AUDIT_DEBS = ("base-files", "libc6", "busybox-static", "libopenblas0-pthread", "libsleef3",
              "libpixman-1-0")
"""The ``.deb`` files tests/test_debian_audit.py audits."""


def pip() -> list[str]:
    """The pip of the project's own environment (pip is a dev dependency: ``uv sync``
    installs it), never one that happens to be on the machine."""
    return [sys.executable, "-m", "pip"]


def real_wheels(ctx: BuildContext) -> list[Path]:
    """The wheels of :data:`WHEELS`, downloaded once into ``ctx``'s cache (renamed into
    place)."""
    cache = ctx.cache("pypi-wheels")
    found = []
    for requirement in WHEELS:
        name, version = requirement.split("==")
        stem = f"{name.replace('-', '_')}-{version}-"
        cached = sorted(cache.glob(f"{stem}*.whl"))
        if not cached:
            with tempfile.TemporaryDirectory(dir=cache) as work:
                subprocess.run([*pip(), "download", "--quiet", "--no-deps",
                                "--only-binary=:all:", *PIP_TARGET, requirement, "-d", work],
                               check=True, timeout=300)
                for wheel in Path(work).glob("*.whl"):
                    os.replace(wheel, cache / wheel.name)
            cached = sorted(cache.glob(f"{stem}*.whl"))
        assert cached and "riscv64" in cached[0].name, requirement
        found.append(cached[0])
    return found


def debian_packages(ctx: BuildContext, names: tuple[str, ...]) -> dict[str, Path]:
    """The trixie riscv64 ``.deb`` files ``names`` from the host's Debian mirror, verified
    and cached."""
    from rvforge_debootstrap.archive import DebianArchive

    return DebianArchive(ctx).download_many(names)


def debian_kernel(ctx: BuildContext) -> Path:
    """The Debian kernel the boot tests use (``--kernel auto``)."""
    from rvforge_qemu.kernels import resolve_kernel

    return resolve_kernel("auto", ctx).image
