"""``rvforge build``: assemble, audit and pack an image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rvforge import pipeline
from rvforge.cli.common import handle_errors, load_registry
from rvforge.config import AUDIT_MODES, Config, load_config
from rvforge.context import BuildContext
from rvforge.errors import UsageError
from rvforge.options import build_options, parse_extra_args
from rvforge.pipeline import BuildSpec, Step
from rvforge.registry import Registry


def register(app: typer.Typer) -> None:
    app.command(
        "build",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help=(
            "Build a riscv64 root filesystem image: provider, overlays, audit, pack.\n\n"
            "Options the provider takes beyond the common ones are passed through: e.g. "
            "'--variant minbase' for debootstrap, '--sha256 HEX' for alpine "
            "('rvforge plugins' lists each provider's options)."
        ),
    )(build)


@handle_errors
def build(
    ctx: typer.Context,
    provider: Annotated[str | None, typer.Option(help="Base rootfs provider (alpine, "
                                                 "debootstrap, local, ...).")] = None,
    source: Annotated[str | None, typer.Option(help="Provider source: a directory or "
                                               "tarball (local), a tarball (alpine).")] = None,
    release: Annotated[str | None, typer.Option(help="Distribution release.")] = None,
    mirror: Annotated[str | None, typer.Option(help="Distribution mirror URL or path.")]
    = None,
    package: Annotated[list[str] | None, typer.Option(
        help="Extra package to install (repeatable).")] = None,
    overlay: Annotated[list[str] | None, typer.Option(
        help="Add host SRC (file or directory) at DEST in the image: SRC:DEST "
             "(repeatable, applied in order).")] = None,
    machine: Annotated[str | None, typer.Option(help="Target machine profile "
                                                "('rvforge machines').")] = None,
    isa: Annotated[str | None, typer.Option(help="Audit against this ISA or profile "
                                            "instead of the machine's (rv64gc, rva23u64).")]
    = None,
    deep: Annotated[bool, typer.Option(help="Also sweep instructions, not only ELF "
                                       "attributes.")] = False,
    no_audit: Annotated[bool, typer.Option("--no-audit", help="Skip the audit.")] = False,
    audit_warn_only: Annotated[bool, typer.Option(
        "--audit-warn-only", help="Report audit errors but pack anyway.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Artifact path; its suffix picks the packer (.cpio.gz, "
        ".cpio.zst, .cpio.xz, .cpio, .tar, .tar.gz, .tar.zst, .ext4). Default: "
        "build/<provider>-<release>-riscv64.cpio.gz.")] = None,
    packer: Annotated[str | None, typer.Option(help="Packer name, overriding the suffix.")]
    = None,
    init: Annotated[bool | None, typer.Option(
        "--init/--no-init", help="Write rvforge's /init (default: for initramfs images "
        "that lack one).")] = None,
    offline: Annotated[bool, typer.Option(help="Use only the download cache.")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file (default: "
                                                "./rvforge.toml if present).")] = None,
    format: Annotated[str, typer.Option("--format", help="Report format: text or json.")]
    = "text",
) -> None:
    if format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {format!r}")
    if no_audit and audit_warn_only:
        raise UsageError("--no-audit and --audit-warn-only exclude each other")
    if machine and isa:
        raise UsageError("--machine and --isa exclude each other; --isa already names the "
                         "target CPU")
    settings = load_config(config)
    registry = load_registry()
    for profile in settings.machines:
        registry.add_machine(profile)
    cli = {
        "provider": provider, "output": output, "packer": packer, "machine": machine,
        "isa": isa, "deep": deep or None, "init": init,
        "audit": "off" if no_audit else ("warn-only" if audit_warn_only else None),
    }
    provider_values = {"source": source, "release": release, "mirror": mirror,
                       "package": package or None}
    with BuildContext(registry, offline=offline, settings=settings.plugins) as bctx:
        spec = make_spec(registry, settings, cli, provider_values, list(ctx.args),
                         overlay or [], bctx)
        report = pipeline.build(registry, spec, bctx)
    if format == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    art = report.artifact
    typer.echo(f"{art.path}  {art.format}  {art.size} bytes  sha256 {art.sha256}")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.stats.counts.items()))
    typer.echo(f"  {report.stats.entries} entries ({counts}); {report.stats.file_bytes} "
               f"bytes of files")
    audit = report.audit
    if spec.audit != "off":
        typer.echo(f"  audit for {spec.machine.name} ({spec.machine.isa}): "
                   f"{len(audit.errors)} errors, {len(audit.warnings)} warnings")


def make_spec(registry: Registry, config: Config, cli: dict[str, Any],
              provider_values: dict[str, Any], extra_args: list[str], overlays: list[str],
              ctx: BuildContext) -> BuildSpec:
    """Merge ``rvforge.toml`` and the command line (which wins) into a :class:`BuildSpec`."""
    settings = {**config.build, **{k: v for k, v in cli.items() if v is not None}}
    provider_name = settings.get("provider")
    if not provider_name:
        known = ", ".join(registry.providers.names())
        raise UsageError(f"no provider: pass --provider NAME (known: {known}) or set "
                         "[build] provider in rvforge.toml")
    provider_cls = registry.providers.get(provider_name)
    owner = f"provider {provider_name!r}"
    values = dict(config.provider)
    values.update({k: v for k, v in provider_values.items() if v is not None})
    values.update(parse_extra_args(provider_cls.Options, extra_args, owner=owner))
    provider_options = build_options(provider_cls.Options, values, owner=owner)

    output = Path(settings.get("output") or default_output(provider_cls(), provider_options))
    if settings.get("packer"):
        packer_cls = registry.packers.get(settings["packer"])
        fmt = _format_for(packer_cls, output.name)
    else:
        packer_cls, fmt = registry.packer_for(output.name)

    steps = [overlay_step(registry, table, "rvforge.toml [[overlay]]") for table in
             config.overlays]
    steps += [overlay_step(registry, parse_overlay_flag(flag), f"--overlay {flag}")
              for flag in overlays]
    init = settings.get("init")
    if init or (init is None and packer_cls.kind == "initramfs" and "init" in
                registry.overlays):
        steps.append(Step("init", build_options(registry.overlays.get("init").Options,
                                                {"replace": bool(init)}, owner="overlay 'init'")))

    ctx.deep = bool(settings.get("deep", False))
    machine = registry.resolve_machine(settings.get("machine"), settings.get("isa"), ctx)
    audit = settings.get("audit", "enforce")
    if audit not in AUDIT_MODES:
        raise UsageError(f"audit must be one of {', '.join(AUDIT_MODES)}, not {audit!r}")
    auditors = settings.get("auditors")
    if auditors is not None:
        for name in auditors:
            registry.auditors.get(name)
    return BuildSpec(Step(provider_name, provider_options), steps,
                     Step(packer_cls.name, None), fmt, output, machine, auditors, audit)


def default_output(provider: Any, options: Any) -> str:
    return f"build/{provider.describe(options)}-riscv64.cpio.gz"


def parse_overlay_flag(flag: str) -> dict[str, Any]:
    """``SRC:DEST`` → the options of a ``dir`` or ``file`` overlay (by what SRC is)."""
    source, sep, dest = flag.rpartition(":")
    if not sep or not source or not dest.startswith("/"):
        raise UsageError(f"--overlay {flag!r}: expected SRC:DEST with DEST an absolute path "
                         "in the image, e.g. --overlay ./payload:/opt/payload")
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"--overlay {flag!r}: {source} does not exist")
    return {"name": "dir" if path.is_dir() else "file", "source": str(path), "dest": dest}


def overlay_step(registry: Registry, table: dict[str, Any], where: str) -> Step:
    values = dict(table)
    name = values.pop("name")
    overlay_cls = registry.overlays.get(name)
    return Step(name, build_options(overlay_cls.Options, values, owner=f"overlay {name!r} "
                                    f"({where})"))


def _format_for(packer_cls: Any, output_name: str) -> str:
    for suffix in sorted(packer_cls.suffixes, key=len, reverse=True):
        if output_name.endswith(suffix):
            return suffix.lstrip(".")
    if not packer_cls.suffixes:
        return packer_cls.name
    return packer_cls.suffixes[0].lstrip(".")
