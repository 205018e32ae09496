"""``rvforge boot`` and ``rvforge run``: start an artifact on a machine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from rvforge.artifacts import Artifact, BootResult
from rvforge.cli.common import QEMU_HELP, handle_errors, load_registry, with_qemu
from rvforge.config import load_config
from rvforge.context import BuildContext
from rvforge.errors import BootFailedError, UsageError
from rvforge.machines import AUTO_MACHINE, machine_for_image
from rvforge.options import build_options, launch_limits

GDB_PORT = 1234
Share = Annotated[list[str] | None, typer.Option(
    "--share", metavar="HOST:GUEST[:ro]", help="Mount host directory HOST at GUEST in the "
    "guest (virtio-9p; writes reach the host; :ro refuses them). Repeatable.")]
Net = Annotated[bool, typer.Option(help="User-mode networking: the guest is 10.0.2.15, "
                                        "the host's loopback is 10.0.2.2.")]
Forward = Annotated[list[str] | None, typer.Option(
    "--forward", metavar="HOSTPORT:GUESTPORT", help="Forward TCP port HOSTPORT of the "
    "host's 127.0.0.1 to GUESTPORT in the guest (implies --net). Repeatable.")]
Append = Annotated[str | None, typer.Option(help="More kernel command-line words.")]
QemuArg = Annotated[list[str] | None, typer.Option(
    "--qemu-arg", metavar="ARG", help="One more QEMU argument (repeat for each word).")]
Gdb = Annotated[bool, typer.Option(help=f"QEMU's gdbstub on 127.0.0.1 (port {GDB_PORT}, "
                                        "or --gdb-port).")]
GdbPort = Annotated[int | None, typer.Option(help="The gdbstub's port (implies --gdb).")]
Halted = Annotated[bool, typer.Option(help="With --gdb: the CPUs wait for the debugger's "
                                           "'continue'.")]
Console = Annotated[bool, typer.Option(help="Show the serial console while it runs (on "
                                            "stderr).")]
Offline = Annotated[bool, typer.Option(help="Never touch the network: the cached kernel.")]


def _dev_options(share: list[str] | None, net: bool, forward: list[str] | None,
                 append: str | None, qemu_arg: list[str] | None, gdb: bool,
                 gdb_port: int | None, halted: bool, console: bool) -> dict[str, Any]:
    """The development-loop flags shared by ``boot`` and ``run``, as launch options."""
    return {"share": share or None, "net": net or None, "forward": forward or None,
            "append": append, "qemu_arg": qemu_arg or None,
            "gdb": gdb_port if gdb_port is not None else (GDB_PORT if gdb else None),
            "halted": halted or None, "console": console or None}


def register(app: typer.Typer) -> None:
    app.command("boot")(boot)
    app.command("run")(run)


def _launch_options(launcher_cls: Any, values: dict[str, Any]) -> Any:
    values = launch_limits(values)
    return build_options(launcher_cls.Options, {k: v for k, v in values.items()
                                                if v is not None},
                         owner=f"launcher {launcher_cls.name!r}")


def _report_failure(result: BootResult) -> NoReturn:
    for line in result.console_tail:
        typer.echo(f"  | {line}", err=True)
    for line in result.diagnosis:
        typer.echo(f"rvforge: {line}", err=True)
    where = f"; full console log: {result.console_log}" if result.console_log else ""
    raise BootFailedError(f"boot failed: {result.reason}{where}")


@handle_errors
def boot(
    image: Annotated[Path, typer.Argument(help="An initramfs or ext4 image rvforge built.")],
    machine: Annotated[str | None, typer.Option(help="Machine profile, or auto: the smallest "
                                                "whose CPU has what the image needs.")] = None,
    kernel: Annotated[str | None, typer.Option(help="Kernel image path or kernel source "
                                               "name (default: auto).")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for the ready "
                                                  "marker.")] = None,
    console_log: Annotated[Path | None, typer.Option(help="Keep the serial console here.")]
    = None,
    interactive: Annotated[bool, typer.Option(help="Attach the guest console to this "
                                              "terminal.")] = False,
    memory: Annotated[int | None, typer.Option(help="RAM in MB (overrides the profile).")]
    = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs (overrides the profile).")] = None,
    share: Share = None,
    net: Net = False,
    forward: Forward = None,
    append: Append = None,
    qemu_arg: QemuArg = None,
    gdb: Gdb = False,
    gdb_port: GdbPort = None,
    halted: Halted = False,
    console: Console = False,
    offline: Offline = False,
    config: Annotated[Path | None, typer.Option(help="Config file.")] = None,
    qemu: Annotated[Path | None, typer.Option(help=QEMU_HELP)] = None,
) -> None:
    """Boot IMAGE, wait for rvforge's ready marker, shut down; exit 4 if it never came.
    With --interactive: a shell on the guest's console (Ctrl-] leaves)."""
    registry = load_registry()
    settings = load_config(config)
    for profile in settings.machines:
        registry.add_machine(profile)
    with BuildContext(registry, offline=offline,
                      settings=with_qemu(settings.plugins, qemu)) as ctx:
        target = registry.resolve_machine(machine, None, ctx)
        if target.name == AUTO_MACHINE:
            target = machine_for_image(image, registry, ctx)
        if not target.launcher:
            raise UsageError(f"machine {target.name!r} has no launcher; install rvforge-qemu "
                             "or pick another --machine")
        launcher_cls = registry.launchers.get(target.launcher)
        options = _launch_options(launcher_cls, {
            "kernel": kernel, "timeout": timeout, "console_log": console_log,
            "interactive": interactive or None, "memory": memory, "cpus": cpus,
            **_dev_options(share, net, forward, append, qemu_arg, gdb, gdb_port, halted,
                           console)})
        result = launcher_cls().boot(Artifact.of_image(image), target, options, ctx)
    if not result.ok:
        _report_failure(result)
    typer.echo(f"booted {image} on {target.name} in {result.seconds:.1f} s")


@handle_errors
def run(
    image: Annotated[Path, typer.Argument(help="An image rvforge built.")],
    command: Annotated[list[str], typer.Argument(help="Command and arguments to run in the "
                                                 "guest (after --).")],
    machine: Annotated[str | None, typer.Option(help="Machine profile, or auto: the smallest "
                                                "whose CPU has what the image needs.")] = None,
    launcher: Annotated[str | None, typer.Option(help="Launcher overriding the profile's "
                                                 "(e.g. qemu-user).")] = None,
    kernel: Annotated[str | None, typer.Option(help="Kernel image path or source name.")]
    = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds for the whole run.")]
    = None,
    console_log: Annotated[Path | None, typer.Option(help="Keep the serial console here.")]
    = None,
    memory: Annotated[int | None, typer.Option(help="RAM in MB.")] = None,
    cpus: Annotated[int | None, typer.Option(help="CPUs.")] = None,
    share: Share = None,
    net: Net = False,
    forward: Forward = None,
    append: Append = None,
    qemu_arg: QemuArg = None,
    gdb: Gdb = False,
    gdb_port: GdbPort = None,
    halted: Halted = False,
    console: Console = False,
    offline: Offline = False,
    config: Annotated[Path | None, typer.Option(help="Config file.")] = None,
    qemu: Annotated[Path | None, typer.Option(help=QEMU_HELP)] = None,
) -> None:
    """Boot IMAGE, run COMMAND in the guest, print its output (as it comes; the kernel's
    console is kept apart) and exit with its status. A command that did not finish (timeout,
    panic) exits 4."""
    if not command:
        raise UsageError("no command: rvforge run IMAGE -- CMD [ARGS...]")
    registry = load_registry()
    settings = load_config(config)
    for profile in settings.machines:
        registry.add_machine(profile)
    with BuildContext(registry, offline=offline,
                      settings=with_qemu(settings.plugins, qemu)) as ctx:
        target = registry.resolve_machine(machine, None, ctx)
        if target.name == AUTO_MACHINE:
            target = machine_for_image(image, registry, ctx)
        name = launcher or target.launcher
        if not name:
            raise UsageError(f"machine {target.name!r} has no launcher; pass --launcher")
        launcher_cls = registry.launchers.get(name)
        options = _launch_options(launcher_cls, {
            "kernel": kernel, "timeout": timeout, "console_log": console_log,
            "memory": memory, "cpus": cpus, "stream": True,
            **_dev_options(share, net, forward, append, qemu_arg, gdb, gdb_port, halted,
                           console)})
        result = launcher_cls().run(Artifact.of_image(image), target, list(command), options, ctx)
    sys.stdout.flush()
    for line in result.diagnosis:
        typer.echo(f"rvforge: {line}", err=True)
    if result.status is None:
        _report_failure(result)
    raise typer.Exit(result.status)
