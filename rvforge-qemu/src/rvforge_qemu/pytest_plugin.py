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
    (machine ``--rvforge-machine``, kernel ``--rvforge-kernel``, QEMU ``--rvforge-qemu``,
    default ``$RVFORGE_QEMU`` or the one on PATH; host directories
    ``--rvforge-share HOST:GUEST[:ro]``, networking ``--rvforge-net``, port forwards
    ``--rvforge-forward HOSTPORT:GUESTPORT``, the first and last repeatable).
    ``run(argv or script, timeout=...)`` returns a :class:`rvforge.RunResult`: ``status``,
    ``stdout``, ``stderr`` (bytes), and ``diagnosis`` (explanations of illegal
    instructions).
``rvforge_boot``
    ``rvforge_boot(image, machine=None, kernel=None, qemu=None, share=(), net=False,
    forward=())`` boots another image (once per image and settings) and returns its
    session.

The ini file takes the same settings: ``rvforge_share`` and ``rvforge_forward`` one per
line, ``rvforge_net = true``. ``--rvforge-offline`` boots the cached kernel without
touching the network.

Every guest is powered off (or killed) when the session ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from rvforge import Artifact, BuildContext, UsageError

from rvforge_qemu.options import DEFAULT_TIMEOUT, LaunchOptions
from rvforge_qemu.session import Session

Boot = Callable[..., Session]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rvforge-qemu", "boot riscv64 images with rvforge")
    for name, help_text in (
        ("image", "image (initramfs or ext4) the rvforge_guest fixture boots"),
        ("machine", "machine profile for rvforge_guest (default: qemu-virt)"),
        ("kernel", "kernel path or source for rvforge_guest (default: auto)"),
        ("timeout", f"seconds per boot and per command (default: {DEFAULT_TIMEOUT:g})"),
        ("qemu", "qemu-system-riscv64 binary (default: $RVFORGE_QEMU, else PATH)"),
    ):
        group.addoption(f"--rvforge-{name}", dest=f"rvforge_{name}", help=help_text)
        parser.addini(f"rvforge_{name}", help_text)
    for name, help_text in (
        ("share", "HOST:GUEST[:ro]: mount a host directory in rvforge_guest (repeatable)"),
        ("forward", "HOSTPORT:GUESTPORT: forward a port of 127.0.0.1 to rvforge_guest "
                    "(repeatable; implies --rvforge-net)"),
    ):
        group.addoption(f"--rvforge-{name}", dest=f"rvforge_{name}", action="append",
                        default=[], help=help_text)
        parser.addini(f"rvforge_{name}", help_text, type="linelist")
    group.addoption("--rvforge-net", dest="rvforge_net", action="store_true",
                    help="user-mode networking for rvforge_guest (host loopback: 10.0.2.2)")
    parser.addini("rvforge_net", "user-mode networking for rvforge_guest", type="bool",
                  default=False)
    group.addoption("--rvforge-offline", dest="rvforge_offline", action="store_true",
                    help="never touch the network: boot the cached kernel")


def _setting(config: pytest.Config, name: str) -> str | None:
    return config.getoption(f"rvforge_{name}") or config.getini(f"rvforge_{name}") or None


def _settings(config: pytest.Config, name: str) -> tuple[str, ...]:
    return tuple(config.getoption(f"rvforge_{name}") or config.getini(f"rvforge_{name}"))


@pytest.fixture(scope="session")
def rvforge_boot(pytestconfig: pytest.Config) -> Iterator[Boot]:
    """Boot an image once per (image, machine, kernel, QEMU, shares, network) for the
    whole session."""
    from rvforge import build_registry

    timeout = float(_setting(pytestconfig, "timeout") or DEFAULT_TIMEOUT)
    sessions: dict[tuple[object, ...], Session] = {}
    contexts: dict[str | None, BuildContext] = {}
    registry = build_registry()
    with ExitStack() as stack:

        def boot(image: str | Path, machine: str | None = None, kernel: str | None = None,
                 qemu: str | Path | None = None, share: tuple[str, ...] = (),
                 net: bool = False, forward: tuple[str, ...] = ()) -> Session:
            binary = str(qemu or _setting(pytestconfig, "qemu") or "") or None
            key = (str(Path(image).resolve()), machine, kernel, binary, tuple(share), net,
                   tuple(forward))
            if binary not in contexts:
                settings = {"qemu": {"binary": binary}} if binary else {}
                contexts[binary] = stack.enter_context(BuildContext(
                    registry, settings=settings,
                    offline=bool(pytestconfig.getoption("rvforge_offline"))))
            ctx = contexts[binary]
            if key not in sessions:
                target = ctx.registry.resolve_machine(machine, None, ctx)
                launcher = ctx.registry.launchers.get(target.launcher or "qemu-virt")()
                if not hasattr(launcher, "session"):
                    raise UsageError(f"launcher {target.launcher!r} cannot keep a guest "
                                     "running; use a qemu-virt machine")
                options = LaunchOptions(kernel=kernel or "auto", timeout=timeout,
                                        share=list(share), net=net, forward=list(forward))
                sessions[key] = stack.enter_context(
                    launcher.session(Artifact.of_image(Path(image)), target, options, ctx))
            return sessions[key]

        yield boot


@pytest.fixture(scope="session")
def rvforge_guest(pytestconfig: pytest.Config, rvforge_boot: Boot) -> Session:
    """The guest booted from ``--rvforge-image`` (or the ``rvforge_image`` ini value)."""
    image = _setting(pytestconfig, "image")
    if not image:
        pytest.fail("rvforge_guest needs an image: pass --rvforge-image PATH or set "
                    "rvforge_image in the pytest configuration")
    return rvforge_boot(image, _setting(pytestconfig, "machine"),
                        _setting(pytestconfig, "kernel"),
                        share=_settings(pytestconfig, "share"),
                        net=bool(pytestconfig.getoption("rvforge_net")
                                 or pytestconfig.getini("rvforge_net")),
                        forward=_settings(pytestconfig, "forward"))
