"""Fill the tests' own cache (``build/test-cache``, or ``$RVFORGE_TEST_CACHE``) with what the
tests download — the Debian kernel, the Debian packages they audit, the binutils 2.44 sysroot
(tests/gnu_toolchain.py) and the PyPI wheels — so
a CI run downloads each once, before the tests, not once per test. Quick when already full.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import gnu_toolchain  # noqa: E402
from downloads import (  # noqa: E402
    AUDIT_DEBS,
    DEBS,
    debian_kernel,
    debian_packages,
    real_wheels,
)

from conftest import cache_home_for_tests  # noqa: E402
from rvforge.context import BuildContext  # noqa: E402
from rvforge.registry import build_registry  # noqa: E402


def main() -> None:
    cache = cache_home_for_tests() / "rvforge"
    with BuildContext(build_registry(), cache_dir=cache) as ctx:
        print(f"test cache {cache}")
        print(f"  kernel {debian_kernel(ctx).name}")
        debs = debian_packages(ctx, tuple(dict.fromkeys((*DEBS, *AUDIT_DEBS))))
        print(f"  {len(debs)} Debian packages")
        print(f"  binutils {gnu_toolchain.toolchain(ctx).sysroot.name}")
        print(f"  {len(real_wheels(ctx))} wheels")


if __name__ == "__main__":
    main()
