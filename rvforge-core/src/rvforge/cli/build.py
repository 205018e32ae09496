"""``rvforge build``: parse the flags, resolve the spec (:mod:`rvforge.spec`), run the
pipeline, print the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rvforge.cli.common import (
    command_context,
    handle_errors,
    launcher_flags_command,
    launcher_values,
)
from rvforge.errors import UsageError
from rvforge.launching import apply_launcher_settings


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
        cls=launcher_flags_command("build"),
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
    from rvforge import pipeline  # the build's modules: only for this command
    from rvforge.spec import BuildFlags, resolve_spec

    if format not in ("text", "json"):
        raise UsageError(f"--format must be text or json, not {format!r}")
    if no_audit and audit_warn_only:
        raise UsageError("--no-audit and --audit-warn-only exclude each other")
    if machine and isa:
        raise UsageError("--machine and --isa exclude each other; --isa already names the "
                         "target CPU")
    flags = BuildFlags(
        provider=provider, output=output, packer=packer, machine=machine, isa=isa,
        deep=deep or None, init=init,
        audit="off" if no_audit else ("warn-only" if audit_warn_only else None),
        provider_values={"source": source, "release": release, "mirror": mirror,
                         "package": package or None},
        extra_args=list(ctx.args), overlays=overlay or [])
    with command_context(config, offline=offline, cli=ctx) as (settings, bctx):
        apply_launcher_settings(bctx, launcher_values(ctx), "build")
        spec = resolve_spec(bctx.registry, settings, flags, bctx)
        report = pipeline.build(bctx.registry, spec, bctx)
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
        typer.echo(f"  audit for {audit.machine.name} ({audit.machine.isa}): "
                   f"{len(audit.errors)} errors, {len(audit.warnings)} warnings")

