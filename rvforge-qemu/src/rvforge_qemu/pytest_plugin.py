"""pytest plugin: test riscv64 software in a booted guest.

Opt in with ``pytest -p rvforge_qemu.pytest_plugin`` or ``pytest_plugins =
["rvforge_qemu.pytest_plugin"]`` in your top-level ``conftest.py`` (installing
rvforge-qemu loads nothing into other projects' pytest sessions). Boot an image once per
test session and run commands in it::

    # pytest -p rvforge_qemu.pytest_plugin --rvforge-image build/app.cpio.gz
    # (or rvforge_image = ... in the ini file)
    def test_uname(rvforge_guest):
        result = rvforge_guest.run(["uname", "-m"])
        assert result.status == 0
        assert result.stdout == b"riscv64\\n"

Fixtures (both session-scoped):

``rvforge_guest``
    A :class:`~rvforge_qemu.session.Session` on the image given by ``--rvforge-image``
    (machine ``--rvforge-machine``; ``--rvforge-machine A,B`` or ``all`` runs each test
    using it once per machine, its id naming the machine, as ``rvforge run --machine A,B``
    does; each machine's guest powers off before the next one boots). Every option the
    ``qemu-virt`` launcher declares for ``rvforge run`` is an option here too, named
    ``--rvforge-`` and the flag's name, with the same meaning: kernel ``--rvforge-kernel``,
    QEMU ``--rvforge-qemu`` (default ``$RVFORGE_QEMU`` or the one on PATH), host directories
    ``--rvforge-share HOST:GUEST[:ro]``, networking ``--rvforge-net``, port forwards
    ``--rvforge-forward HOSTPORT:GUESTPORT``, ``--rvforge-timeout``, ``--rvforge-memory``,
    ``--rvforge-append``... (``pytest --help`` lists them; the repeatable ones may be given
    many times). ``run(argv or script, timeout=...)`` returns a :class:`rvforge.RunResult`:
    ``status``, ``stdout``, ``stderr`` (bytes), and ``diagnosis`` (explanations of illegal
    instructions).
``rvforge_vm`` (function-scoped)
    A guest of its own for each test, on the image and options of ``rvforge_guest``,
    restored from the image's snapshot (the first one boots and saves it; see
    docs/qemu.md, "Snapshots"): what one test writes in its guest, the next test does not
    see. Each pytest-xdist worker restores its own guests.
``rvforge_boot``
    ``rvforge_boot(image, machine=None, **options)`` boots another image (once per image,
    machine and options; ``options`` by field name: ``kernel=``, ``qemu=``, ``share=[...]``,
    ``net=True``, ``forward=[...]``...) and returns its session. ``--rvforge-timeout`` and
    ``--rvforge-qemu`` are its defaults.

The ini file takes the same settings (``rvforge_share = ...`` one per line, ``rvforge_net =
true``). ``--rvforge-offline`` boots the cached kernel without touching the network. Both
fixtures start guests as ``rvforge boot``/``run`` do (:func:`rvforge.prepare_launch`): the
same checks, the same errors.

Every guest is powered off (or killed) when the session ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from rvforge import (
    BuildContext,
    LaunchSession,
    OptionSpec,
    declared_options,
    is_matrix,
    matrix_machines,
    prepare_launch,
)

from rvforge_qemu.options import LaunchOptions, qemu_settings

Boot = Callable[..., LaunchSession]
SESSION_DEFAULTS = ("timeout", "qemu")
"""Options whose pytest setting is the default of every ``rvforge_boot`` call."""


def guest_options() -> list[OptionSpec]:
    """The ``qemu-virt`` options the fixtures take: those it declares for ``rvforge run``."""
    return [spec for spec in declared_options(LaunchOptions) if "run" in spec.commands]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rvforge-qemu", "boot riscv64 images with rvforge")
    for name, help_text in (
        ("image", "image (initramfs or ext4) the rvforge_guest fixture boots"),
        ("machine", "machine profile for rvforge_guest (default: qemu-virt); A,B or all: "
                    "each test using it once per machine"),
    ):
        group.addoption(f"--rvforge-{name}", dest=f"rvforge_{name}", help=help_text)
        parser.addini(f"rvforge_{name}", help_text)
    for spec in guest_options():
        flag, dest = f"--rvforge-{spec.flag[2:]}", f"rvforge_{spec.name}"
        help_text = spec.help.replace("%", "%%")
        if spec.kind is list:
            group.addoption(flag, dest=dest, action="append", default=[],
                            metavar=spec.metavar or None, help=help_text)
            parser.addini(dest, spec.help, type="linelist")
        elif spec.kind is bool:
            group.addoption(flag, dest=dest, action="store_true", default=None,
                            help=help_text)
            parser.addini(dest, spec.help, type="bool", default=False)
        else:
            group.addoption(flag, dest=dest, metavar=spec.metavar or None, help=help_text)
            parser.addini(dest, spec.help)
    group.addoption("--rvforge-offline", dest="rvforge_offline", action="store_true",
                    help="never touch the network: boot the cached kernel")


def _setting(config: pytest.Config, name: str) -> Any:
    """The command line's value of ``name``, else the ini file's; ``None`` when neither
    gives one."""
    return config.getoption(f"rvforge_{name}") or config.getini(f"rvforge_{name}") or None


@pytest.fixture(scope="session")
def rvforge_boot(pytestconfig: pytest.Config) -> Iterator[Boot]:
    """Boot an image once per (image, machine, options) for the whole session."""
    from rvforge import build_registry

    defaults = {name: _setting(pytestconfig, name) for name in SESSION_DEFAULTS}
    sessions: dict[tuple[object, ...], LaunchSession] = {}
    contexts: dict[object, BuildContext] = {}
    registry = build_registry()
    with ExitStack() as stack:

        def boot(image: str | Path, machine: str | None = None,
                 **options: Any) -> LaunchSession:
            values = {**defaults, **{k: v for k, v in options.items() if v is not None}}
            key = (str(Path(image).resolve()), machine,
                   tuple(sorted((k, repr(v)) for k, v in values.items())))
            if key in sessions:
                return sessions[key]
            # a context per QEMU binary: --qemu is laid over its settings
            qemu = str(values.get("qemu") or "")
            if qemu not in contexts:
                contexts[qemu] = stack.enter_context(BuildContext(  # fixes name our options
                    registry, offline=bool(pytestconfig.getoption("rvforge_offline")),
                    flag_prefix="--rvforge-"))
            ctx = contexts[qemu]
            launch = prepare_launch(image, ctx, machine=machine, values=values,
                                    command="session")
            sessions[key] = stack.enter_context(launch.session(ctx))
            return sessions[key]

        yield boot


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``--rvforge-machine A,B`` (or ``all``): each test using ``rvforge_guest`` once per
    machine, its id naming the machine."""
    spec = _setting(metafunc.config, "machine")
    if "rvforge_machine" not in metafunc.fixturenames or not is_matrix(spec):
        return
    names = metafunc.config.stash.get(_MACHINES, None)
    if names is None:
        names = _matrix_names(metafunc.config, spec)
        metafunc.config.stash[_MACHINES] = names
    metafunc.parametrize("rvforge_machine", names, ids=names, indirect=True,
                         scope="session")


_MACHINES = pytest.StashKey[list[str]]()


def _matrix_names(config: pytest.Config, spec: str) -> list[str]:
    """The profiles ``spec`` stands for (``all``: those this QEMU boots, as ``rvforge
    run --machine all`` picks them)."""
    from rvforge import build_registry

    qemu = _setting(config, "qemu")
    with BuildContext(build_registry(),
                      settings=qemu_settings(Path(qemu) if qemu else None)) as ctx:
        names, left_out = matrix_machines(spec, ctx)
    for item in left_out:
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"--rvforge-machine all: left out {item.machine}: {item.reason}"), stacklevel=2)
    return names


@pytest.fixture(scope="session")
def rvforge_machine(request: pytest.FixtureRequest) -> str | None:
    """The machine profile ``rvforge_guest`` boots: ``--rvforge-machine``, or with
    ``A,B`` each in turn."""
    return getattr(request, "param", None) or _setting(request.config, "machine")


@pytest.fixture(scope="session")
def rvforge_guest(pytestconfig: pytest.Config, rvforge_boot: Boot,
                  rvforge_machine: str | None) -> Iterator[LaunchSession]:
    """The guest booted from ``--rvforge-image`` (or the ``rvforge_image`` ini value); with
    several machines, each machine's guest powers off when its tests are done."""
    image = _setting(pytestconfig, "image")
    if not image:
        pytest.fail("rvforge_guest needs an image: pass --rvforge-image PATH or set "
                    "rvforge_image in the pytest configuration")
    values = {spec.name: _setting(pytestconfig, spec.name) for spec in guest_options()}
    if not is_matrix(_setting(pytestconfig, "machine")):
        yield rvforge_boot(image, rvforge_machine, **values)
        return
    from rvforge import build_registry

    with BuildContext(build_registry(),  # fixes name our options, as rvforge_boot's do
                      offline=bool(pytestconfig.getoption("rvforge_offline")),
                      flag_prefix="--rvforge-") as ctx:
        launch = prepare_launch(image, ctx, machine=rvforge_machine, values=values,
                                command="session")
        with launch.session(ctx) as session:
            yield session


@pytest.fixture(scope="session")
def _rvforge_vm_context(pytestconfig: pytest.Config) -> Iterator[BuildContext]:
    """The build context every ``rvforge_vm`` of this session (or xdist worker) uses."""
    from rvforge import build_registry

    with BuildContext(build_registry(), flag_prefix="--rvforge-",
                      offline=bool(pytestconfig.getoption("rvforge_offline"))) as ctx:
        yield ctx


@pytest.fixture
def rvforge_vm(pytestconfig: pytest.Config,
               _rvforge_vm_context: BuildContext) -> Iterator[LaunchSession]:
    """A guest of this test's own, restored from the image's snapshot."""
    image = _setting(pytestconfig, "image")
    if not image:
        pytest.fail("rvforge_vm needs an image: pass --rvforge-image PATH or set "
                    "rvforge_image in the pytest configuration")
    values = {spec.name: _setting(pytestconfig, spec.name) for spec in guest_options()}
    ctx = _rvforge_vm_context
    launch = prepare_launch(image, ctx, machine=_setting(pytestconfig, "machine"),
                            values=values, command="session")
    with launch.session(ctx) as session:
        yield session
