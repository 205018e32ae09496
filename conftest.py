"""Fixtures shared by every test directory of the workspace.

The workspace's tests use rvforge-core's testing helpers and rvforge-qemu's boot fixtures
as any plugin's tests would: by opting in (``pytest_plugins`` below), not through an entry
point that would load them into every pytest session on the machine.

* ``alpine_tarball``: the real Alpine 3.20.3 riscv64 minirootfs (tests/data/alpine);
  ``alpine_initramfs``: it built into an initramfs once per session (for boot tests).
* ``riscv_cc``: compile C (or assembly) for riscv64 with ``riscv64-linux-gnu-gcc``.
* ``rvforge_cli``: run the real ``rvforge`` executable in a subprocess.
* ``nobody_can_run_rvforge``: lets uid 65534 reach this checkout's ``rvforge`` (for the
  tests that build as an unprivileged user), however private the checkout's parents are.
* ``qemu10``: the QEMU 10 ``qemu-system-riscv64`` that ``make setup-qemu10`` unpacks beside
  the host's 7.2 (``$RVFORGE_TEST_QEMU10``, else ``build/qemu-10``); skipped when absent
  unless the variable names it.
* ``objdump_counts``: instructions per extension as ``riscv64-linux-gnu-objdump -d``
  decodes them — the reference the deep sweep is tested against.
* ``registry`` (the installed plugins, once per session) and ``ctx``: the one build context
  fixture, on the tests' own cache (below) with a scratch directory of its own; a module or
  directory that needs other components overrides ``registry`` (session-scoped too).

The tests have a cache of their own, never the user's ``~/.cache/rvforge``: the session
points ``$XDG_CACHE_HOME`` at ``build/test-cache`` (``$RVFORGE_TEST_CACHE`` to put it
elsewhere) and drops ``$RVFORGE_CACHE_DIR``, so in-process code and every ``rvforge`` the
tests start use ``build/test-cache/rvforge``. ``make test-cache`` (``.ci/seed_test_cache.py``)
fills it with what the tests download before they run; a test that sets its own
``XDG_CACHE_HOME`` or ``RVFORGE_CACHE_DIR`` still gets that.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixture_types import RiscvCC, RunRvforge

from rvforge.context import BuildContext, default_cache_dir
from rvforge.registry import Registry, build_registry

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "tests" / "data"
ALPINE_TARBALL = DATA / "alpine" / "alpine-minirootfs-3.20.3-riscv64.tar.gz"
ALPINE_SHA256 = "290d402a3e2770a74e86caf1e43205dbf337b9aec1610c6c6d8ffbd2d52796a1"
PROGRAMS = DATA / "programs"
RISCV_CC = "riscv64-linux-gnu-gcc"

TEST_CACHE_ENV = "RVFORGE_TEST_CACHE"


def cache_home_for_tests() -> Path:
    """The ``XDG_CACHE_HOME`` of the tests (``$RVFORGE_TEST_CACHE``, else build/test-cache)."""
    return Path(os.environ.get(TEST_CACHE_ENV) or ROOT / "build" / "test-cache").resolve()


def pytest_configure(config: pytest.Config) -> None:
    os.environ["XDG_CACHE_HOME"] = str(cache_home_for_tests())
    os.environ.pop("RVFORGE_CACHE_DIR", None)


# A venv synced before rvforge-core 0.2 still loads the helpers through the old pytest11
# entry point, and pytest refuses a plugin registered twice: `uv sync` makes this moot.
_ENTRY_POINTS = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
pytest_plugins = [plugin for plugin in ("rvforge.testing", "rvforge_qemu.pytest_plugin")
                  if plugin not in _ENTRY_POINTS]


@pytest.fixture(scope="session")
def registry() -> Registry:
    """Every installed plugin's components (core's built-ins, alpine, debootstrap, qemu)."""
    return build_registry()


@pytest.fixture
def cache_dir() -> Path:
    """The cache ``ctx`` uses: the tests' own (``build/test-cache/rvforge``); a module whose
    tests need an empty one overrides this (``tmp_path / "cache"``)."""
    return default_cache_dir()


@pytest.fixture
def ctx(registry: Registry, cache_dir: Path, tmp_path: Path) -> Iterator[BuildContext]:
    """The build context of the tests: :func:`registry`, :func:`cache_dir` and a scratch
    directory of its own."""
    with BuildContext(registry, cache_dir=cache_dir, scratch_dir=tmp_path / "scratch"
                      ) as context:
        yield context


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Every test starts with structlog's defaults: an in-process CLI run configures a
    level (``--quiet`` filters out info), and ``capture_logs`` keeps that filter."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def kernel() -> Path:
    """Debian's riscv64 kernel as ``rvforge run`` picks it (from the tests' cache, which
    ``make test-cache`` seeds)."""
    from rvforge import BuildContext
    from rvforge.registry import build_registry

    from rvforge_qemu.kernels import resolve_kernel

    with BuildContext(build_registry()) as ctx:
        return resolve_kernel("auto", ctx).image


@pytest.fixture(scope="session")
def alpine_tarball() -> Path:
    """The real Alpine riscv64 minirootfs, checked against its published SHA-256."""
    digest = hashlib.sha256(ALPINE_TARBALL.read_bytes()).hexdigest()
    assert digest == ALPINE_SHA256, f"{ALPINE_TARBALL} is not the published tarball"
    return ALPINE_TARBALL


@pytest.fixture(scope="session")
def alpine_initramfs(tmp_path_factory: pytest.TempPathFactory, alpine_tarball: Path) -> Path:
    """The Alpine minirootfs built by ``rvforge build --provider local`` into an initramfs
    (``alpine.cpio.gz``, rvforge's ``/init``): what the boot tests run. Read-only."""
    out = tmp_path_factory.mktemp("alpine-initramfs") / "alpine.cpio.gz"
    built = subprocess.run([str(Path(sys.executable).with_name("rvforge")), "build",
                            "--provider", "local", "--source", str(alpine_tarball), "-o",
                            str(out)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    return out


class RiscvCompiler:
    """``riscv_cc``: see :func:`riscv_cc` (typed as :class:`fixture_types.RiscvCC`)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.cache: dict[tuple[str, tuple[str, ...]], Path] = {}

    def __call__(self, source: str, name: str, *flags: str, suffix: str = ".c") -> Path:
        key = (source, flags)
        if key in self.cache:
            return self.cache[key]
        # a directory per (source, flags): one name given to two programs (test_boards'
        # "vsum" from vsum.c, another test's from vsetvli.c) must not overwrite the other
        where = self.out_dir / hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        where.mkdir(exist_ok=True)
        src = where / f"{name}{suffix}"
        src.write_text(source)
        out = where / name
        result = subprocess.run([RISCV_CC, *flags, "-o", str(out), str(src)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{RISCV_CC} failed:\n{result.stderr}"
        self.cache[key] = out
        return out

    def program(self, program_name: str, name: str, *flags: str) -> Path:
        return self((PROGRAMS / f"{program_name}.c").read_text(), name, *flags)


@pytest.fixture(scope="session")
def riscv_cc(tmp_path_factory: pytest.TempPathFactory) -> RiscvCC:
    """``riscv_cc(source, name, *flags)`` compiles C source text for riscv64 and returns
    the output path; ``riscv_cc.program("vsum", name, *flags)`` compiles one of the shared
    programs in tests/data/programs (``hello``; ``vsum``, which runs vector instructions
    unconditionally). Results are cached per (source, flags) for the session."""
    if shutil.which(RISCV_CC) is None:
        pytest.fail(f"{RISCV_CC} is missing: apt-get install gcc-riscv64-linux-gnu "
                    "(.ci/run installs it)")
    return RiscvCompiler(tmp_path_factory.mktemp("riscv-cc"))


@pytest.fixture
def rvforge_cli() -> RunRvforge:
    """Run the installed ``rvforge`` command as a subprocess (text mode)."""
    exe = Path(sys.executable).with_name("rvforge")

    def run(*args: str, check: bool = False, env: dict[str, str] | None = None,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        result = subprocess.run([str(exe), *args], capture_output=True, text=True,
                                env=full_env, **kwargs)
        if check:
            assert result.returncode == 0, f"rvforge {' '.join(args)}:\n{result.stderr}"
        return result

    return run


OBJDUMP = "riscv64-linux-gnu-objdump"
VECTOR_CSRS = {"vstart", "vxsat", "vxrm", "vcsr", "vl", "vtype", "vlenb"}
SCALAR_MNEMONICS = {
    "zba": {"sh1add", "sh2add", "sh3add", "add.uw", "zext.w", "sh1add.uw", "sh2add.uw",
            "sh3add.uw", "slli.uw"},
    "zbb": {"andn", "orn", "xnor", "max", "maxu", "min", "minu", "rol", "ror", "rolw", "rorw",
            "clz", "ctz", "cpop", "sext.b", "sext.h", "rori", "roriw", "clzw", "ctzw", "cpopw",
            "orc.b", "rev8", "zext.h"},
    "zbc": {"clmul", "clmulh", "clmulr"},
    "zbs": {"bclr", "bclri", "bext", "bexti", "binv", "binvi", "bset", "bseti"},
}


def count_objdump_instructions(path: Path) -> collections.Counter[str]:
    """Instructions per extension (``v`` includes vector CSR accesses) and ``total``, as
    ``objdump -d`` decodes ``path``; data it prints as ``.4byte``/``.insn`` is skipped."""
    out = subprocess.run([OBJDUMP, "-d", "--no-show-raw-insn", str(path)],
                         capture_output=True, text=True, check=True).stdout
    counts: collections.Counter[str] = collections.Counter()
    for m in re.finditer(r"^\s+[0-9a-f]+:\s+([a-z][\w.]*)[ \t]*(\S*)", out, re.MULTILINE):
        mnemonic, operands = m.groups()
        counts["total"] += 1
        if mnemonic.startswith("v") or (mnemonic.startswith("csr")
                                        and set(operands.split(",")) & VECTOR_CSRS):
            counts["v"] += 1
        for ext, names in SCALAR_MNEMONICS.items():
            counts[ext] += mnemonic in names
    return counts


@pytest.fixture(scope="session")
def objdump_counts() -> Callable[[Path], collections.Counter[str]]:
    """``objdump_counts(path)``: see :func:`count_objdump_instructions`."""
    if shutil.which(OBJDUMP) is None:
        pytest.fail(f"{OBJDUMP} is missing: apt-get install binutils-riscv64-linux-gnu "
                    "(.ci/run installs it)")
    return count_objdump_instructions


@pytest.fixture
def nobody_can_run_rvforge() -> Iterator[Path]:
    """The ``rvforge`` executable, made reachable for an unprivileged user: directories
    above it that others cannot enter (a clone in ``mktemp -d`` is 0700) get ``o+x`` for
    the test and their mode back afterwards."""
    exe = Path(sys.executable).with_name("rvforge")
    changed: list[tuple[Path, int]] = []
    for directory in [ROOT, *ROOT.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            changed.append((directory, mode))
            directory.chmod((mode & 0o7777) | 0o001)
    try:
        yield exe
    finally:
        for directory, mode in reversed(changed):
            directory.chmod(mode & 0o7777)


QEMU10_ENV = "RVFORGE_TEST_QEMU10"
QEMU10_DEFAULT = ROOT / "build" / "qemu-10" / "usr" / "bin" / "qemu-system-riscv64"


@pytest.fixture(scope="session")
def qemu10() -> Path:
    """QEMU 10's ``qemu-system-riscv64`` from bookworm-backports (``make setup-qemu10``)."""
    named = os.environ.get(QEMU10_ENV)
    path = Path(named) if named else QEMU10_DEFAULT
    if not path.is_file():
        if named:
            pytest.fail(f"${QEMU10_ENV} names {path}, which does not exist: run "
                        "`make setup-qemu10`")
        pytest.skip(f"no QEMU 10 at {path}: run `make setup-qemu10` (.ci/run does)")
    return path
