"""The typed boundary is real for plugin authors: every package ships ``py.typed``, and a
plugin outside the workspace type-checks against the installed packages with mypy (a
mistake in it is found; without the marker mypy would treat ``rvforge`` as untyped and
find nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["rvforge", "rvforge_alpine", "rvforge_debootstrap", "rvforge_qemu"]

PLUGIN = '''
    from dataclasses import dataclass

    import rvforge


    @dataclass
    class SkeletonOptions:
        release: str = "1"


    class Skeleton(rvforge.Provider[SkeletonOptions]):
        name = "skeleton"
        summary = "an empty tree"
        Options = SkeletonOptions

        def provide(self, options: SkeletonOptions, ctx: rvforge.BuildContext) -> rvforge.Tree:
            tree = rvforge.Tree()
            tree.add_dir("/etc", mode=0o755)
            ctx.log.info("release", release=options.release)
            return tree


    @rvforge.hookimpl
    def rvforge_register_providers(register: object) -> None:
        pass
'''

MISTAKE = '''
    def release_dir(ctx: rvforge.BuildContext) -> str:
        return ctx.cache("skeleton")  # a Path, not a str
'''


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_ships_py_typed(package: str) -> None:
    module = __import__(package)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").is_file()


def mypy(directory: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # run outside the workspace: no pyproject.toml, no mypy_path; only what is installed
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(directory / ".mypy_cache"), "--python-executable",
         sys.executable, *files],
        cwd=directory, capture_output=True, text=True, env=env, timeout=600)


def test_an_outside_plugin_type_checks_against_the_installed_packages(tmp_path: Path
                                                                       ) -> None:
    (tmp_path / "skeleton_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "mistaken_plugin.py").write_text(textwrap.dedent(PLUGIN + MISTAKE))
    clean = mypy(tmp_path, "skeleton_plugin.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "py.typed" not in clean.stdout
    mistaken = mypy(tmp_path, "mistaken_plugin.py")
    assert mistaken.returncode == 1, mistaken.stdout + mistaken.stderr
    assert ('mistaken_plugin.py:29: error: Incompatible return value type (got "Path", '
            'expected "str")') in mistaken.stdout, mistaken.stdout
