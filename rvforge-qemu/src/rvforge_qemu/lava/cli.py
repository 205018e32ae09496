"""``rvforge lava job|run|results``: added to the command line by rvforge-qemu's
``rvforge_add_commands`` hook (which also gives them rvforge's one-line errors).

``job`` and ``run`` take the guest's ``--kernel``, ``--timeout``, ``--memory``, ``--cpus``
and ``--append`` (and ``run`` ``--qemu``) as ``rvforge run`` does: flags derived from what
the ``qemu-virt`` launcher declares for them (:class:`~rvforge_qemu.options.LaunchOptions`),
built and checked by :func:`rvforge.launcher_options`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from rvforge import (
    BuildContext,
    Machine,
    Registry,
    ToolMissingError,
    UsageError,
    build_registry,
    launcher_flags_command,
    launcher_options,
    launcher_values,
    load_config,
    machine_for_image,
)

from rvforge_qemu.lava.dispatch import dispatch, find_lava_run, write_text
from rvforge_qemu.lava.job import job_document, render
from rvforge_qemu.lava.plan import JobOptions, initramfs_of, job_kernel, plan_job
from rvforge_qemu.lava.results import LavaRun, parse
from rvforge_qemu.lava.schema import validate_job
from rvforge_qemu.options import LAVA_JOB, LAVA_RUN, LaunchOptions
from rvforge_qemu.profiles import settings_of
from rvforge_qemu.qemubin import SystemQemu, system_qemu
from rvforge_qemu.virt import QemuVirt

LAUNCHER = "qemu-virt"
AUTO_MACHINE = "auto"
"""``--machine auto``: the smallest profile whose CPU has what the image needs (core's)."""
RESULT_SUFFIXES = (".log", ".yaml", ".yml", ".json", ".xml")
UNKNOWN_FAILURE = 1
"""The exit status of a failed command whose status the input does not hold."""

lava_app = typer.Typer(name="lava", no_args_is_help=True,
                       help="Write LAVA jobs for an image, run them with LAVA's dispatcher "
                            "here, read LAVA's results back.")

Image = Annotated[Path, typer.Argument(help="An initramfs rvforge built.")]
Command = Annotated[list[str], typer.Argument(help="Command and arguments to run in the "
                                              "guest (after --).")]
Machines = Annotated[str | None, typer.Option(
    "--machine", metavar="A[,B...]", help="Machine profiles (one job each), or auto.")]
Config = Annotated[Path | None, typer.Option(help="Config file.")]
Offline = Annotated[bool, typer.Option(help="Never touch the network: the cached kernel.")]


@lava_app.command("job", cls=launcher_flags_command(LAVA_JOB))
def job(
    cli: typer.Context,
    image: Image,
    command: Command,
    machine: Machines = None,
    artifact_url: Annotated[str | None, typer.Option(
        metavar="BASE", help="URL of the directory the worker downloads the image and the "
                             "kernel from (default: file:// URLs of the files here).")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write here instead of stdout; a directory (existing, or "
                               "ending in /) gets one MACHINE.yaml per machine.")] = None,
    validate: Annotated[bool, typer.Option(help="Check each job against LAVA's schema "
                                                "(lava-common).")] = True,
    offline: Offline = False,
    config: Config = None,
) -> None:
    """Write a LAVA job that boots IMAGE on LAVA's qemu device type with each machine's
    CPU, memory and kernel and runs COMMAND, reporting its exit status as a test case
    (--timeout: for the boot, and again for the command)."""
    argv = _argv(command)
    initramfs_of(image)  # before a kernel download
    with _context(config, offline) as (registry, ctx):
        options = _job_options(cli, LAVA_JOB, ctx, artifact_url)
        targets = _machines(machine, image, registry, ctx)
        kernel_image = job_kernel(options, ctx)
        jobs = [plan_job(image, target, argv, options, kernel_image) for target in targets]
        texts = {spec.machine: render([job_document(spec)]) for spec in jobs}
        if validate:
            _validate(texts, ctx)
    if output is not None and (output.endswith("/") or Path(output).is_dir()):
        Path(output).mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            write_text(Path(output, f"{name}.yaml"), text)
        typer.echo(f"wrote {len(texts)} job(s) in {output}", err=True)
        return
    text = render([job_document(spec) for spec in jobs])
    if output is None:
        sys.stdout.write(text)
    else:
        write_text(Path(output), text)


@lava_app.command("run", cls=launcher_flags_command(LAVA_RUN))
def run(
    cli: typer.Context,
    image: Image,
    command: Command,
    machine: Machines = None,
    output_dir: Annotated[Path | None, typer.Option(
        help="Keep the jobs, LAVA's logs and results here (default: a new directory in "
             "rvforge's cache, named on stderr).")] = None,
    offline: Offline = False,
    config: Config = None,
) -> None:
    """Run the job with LAVA's dispatcher on this machine (lava-run, this QEMU), print the
    command's output and exit with its status (4 when the boot failed; with several
    machines, the first machine's that did not pass). --timeout: for the boot, and again
    for the command."""
    find_lava_run()
    argv = _argv(command)
    initramfs_of(image)
    runs = []
    with _context(config, offline) as (registry, ctx):
        options = _job_options(cli, LAVA_RUN, ctx)  # --qemu: laid over ctx's settings
        targets = _machines(machine, image, registry, ctx)
        qemus = [_qemu_for(target, ctx) for target in targets]  # refusals before any work
        base = output_dir or ctx.cache("lava", "runs") / \
            f"{image.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        typer.echo(f"rvforge: LAVA jobs, logs and results in {base}", err=True)
        kernel_image = job_kernel(options, ctx)
        for target, qemu_here in zip(targets, qemus):
            spec = plan_job(image, target, argv, options, kernel_image)
            runs.append(dispatch(spec, qemu_here, base / target.name, ctx))
    write_text(base / "results.json", json.dumps([r.to_json() for r in runs], indent=2) + "\n")
    for done in runs:
        typer.echo(f"rvforge: {_describe(done)}", err=True)
    raise typer.Exit(_status(runs))


@lava_app.command("results")
def results(
    source: Annotated[Path, typer.Argument(
        metavar="FILE|DIR", help="A LAVA log or results file (lava-run's log, `lavacli jobs "
                                 "logs --raw`, `lavacli results --yaml`, JUnit XML), or a "
                                 "directory of them (or of `rvforge lava run`'s).")],
    format: Annotated[str, typer.Option(help="json (rvforge's run rows) or text.")] = "json",
) -> None:
    """Turn LAVA's logs or results into rvforge's run rows (machine, status, seconds) and
    exit as `rvforge lava run` would have."""
    if format not in ("json", "text"):
        raise UsageError(f"--format {format}: must be json or text")
    runs = [parse(path.read_text(encoding="utf-8", errors="replace"), hint, str(path))
            for path, hint in _result_files(source)]
    if format == "json":
        typer.echo(json.dumps([r.to_json() for r in runs], indent=2))
    else:
        for done in runs:
            typer.echo(_describe(done))
    raise typer.Exit(_status(runs))


def _validate(texts: dict[str, str], ctx: BuildContext) -> None:
    """Check each job with LAVA's schema; without lava-common, say so and go on (a job
    for a server can be written anywhere)."""
    for name, text in texts.items():
        try:
            validate_job(text, f"the job for {name}")
        except ToolMissingError as missing:
            ctx.log.warning("job not checked against LAVA's schema", reason=str(missing))
            return


def _job_options(cli: typer.Context, command: str, ctx: BuildContext,
                 artifact_url: str | None = None) -> JobOptions:
    """The job's kernel, time, memory, CPUs and kernel words from the flags ``qemu-virt``
    declares for ``command`` (checked as ``rvforge run`` checks them)."""
    launch: LaunchOptions = launcher_options(ctx, LAUNCHER, launcher_values(cli), command)
    return JobOptions(launch.kernel, launch.timeout, launch.memory, launch.cpus,
                      launch.append, artifact_url)


def _argv(command: list[str]) -> list[str]:
    if not command:
        raise UsageError("no command: rvforge lava job|run IMAGE -- CMD [ARGS...]")
    return list(command)


@contextmanager
def _context(config: Path | None, offline: bool) -> Iterator[tuple[Registry, BuildContext]]:
    """The registry (with the config's machines) and a build context."""
    registry = build_registry()
    settings = load_config(config)
    for profile in settings.machines:
        registry.add_machine(profile, base=settings.base)
    with BuildContext(registry, offline=offline, settings=dict(settings.plugins)) as ctx:
        yield registry, ctx


def _machines(names: str | None, image: Path, registry: Registry, ctx: BuildContext
              ) -> list[Machine]:
    """The profiles ``--machine A,B`` names (each once, in order), or ``auto``'s pick."""
    wanted = [n.strip() for n in (names or registry.default_machine()).split(",")
              if n.strip()]
    if not wanted:
        raise UsageError("--machine: no machine named")
    machines = []
    for name in dict.fromkeys(wanted):
        target = machine_for_image(image, registry, ctx) if name == AUTO_MACHINE \
            else registry.machines.get(name)
        if target.launcher != LAUNCHER:
            raise UsageError(f"machine {target.name!r} is not a {LAUNCHER} profile; a LAVA "
                             "job boots on QEMU's virt machine")
        machines.append(target)
    return machines


def _qemu_for(machine: Machine, ctx: BuildContext) -> SystemQemu:
    """The QEMU ``rvforge run`` would use for ``machine``, refused (with the reason) if it
    lacks the CPU model or, for a board, a property of its CPU string."""
    QemuVirt().host_tool(machine, ctx)
    qemu = system_qemu(machine.options, ctx)
    qemu.require_model(settings_of(machine).model, machine.name)
    return qemu


def _result_files(source: Path) -> list[tuple[Path, str]]:
    """``(file, machine hint)``: a file, or a directory's logs and results files."""
    if source.is_file():
        return [(source, source.stem)]
    if not source.is_dir():
        raise UsageError(f"{source}: no such file or directory")
    found = [(log, log.parent.name) for log in sorted(source.glob("*/lava.log"))]
    found += [(path, path.stem) for path in sorted(source.iterdir())
              if path.is_file() and path.suffix in RESULT_SUFFIXES
              and path.name != "results.json"]
    if not found:
        raise UsageError(f"{source}: no LAVA logs or results in it (MACHINE/lava.log, or "
                         f"*{', *'.join(RESULT_SUFFIXES)})")
    return found


def _describe(done: LavaRun) -> str:
    status = "?" if done.status is None else str(done.status)
    seconds = "?" if done.seconds is None else f"{done.seconds:.1f}"
    why = f" ({done.reason})" if done.reason else ""
    return f"{done.machine}: {done.result}, status {status}, {seconds} s{why}"


def _status(runs: list[LavaRun]) -> int:
    """0 if every command passed; else the first failure's status (4: no result)."""
    for done in runs:
        if done.result == "incomplete":
            return 4
        if done.result != "pass":
            return done.status or UNKNOWN_FAILURE
    return 0

