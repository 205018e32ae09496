"""What a build is: the resolved :class:`BuildSpec`, the reports it produces, and how a spec
is resolved from the command line and ``rvforge.toml`` (:func:`resolve_spec`).

The CLI parses flags into :class:`BuildFlags` and prints reports; everything in between —
which provider, overlays, packer, output, machine and audit a build has — is decided here,
once, before the pipeline runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rvforge.config import AUDIT_MODES, Config
from rvforge.errors import UsageError
from rvforge.findings import FindingCode, Severity
from rvforge.machines import AUTO_MACHINE
from rvforge.options import build_options, parse_extra_args, relative_to
from rvforge.userfiles import expand_user

if TYPE_CHECKING:
    from rvforge.artifacts import Artifact
    from rvforge.components import Packer, Provider
    from rvforge.context import BuildContext
    from rvforge.findings import Finding
    from rvforge.machines import Machine
    from rvforge.registry import Registry
    from rvforge.tree import TreeStats

__all__ = ["AuditReport", "BuildFlags", "BuildReport", "BuildSpec", "Step", "resolve_spec"]


@dataclass
class Step:
    """A component with its options, as the pipeline calls it."""

    name: str
    options: Any


@dataclass
class BuildSpec:
    """Everything a build needs, resolved from the CLI and ``rvforge.toml``.

    :param provider: the provider and its options.
    :param overlays: overlays in the order they run.
    :param packer: the packer and the format it writes (``cpio.gz``).
    :param output: the artifact's final path.
    :param machine: the target machine (its ``isa`` already resolved); ``None`` for
        ``--machine auto``, which the pipeline picks from the final tree
        (:mod:`rvforge.auto_machine`) before :func:`~rvforge.hookspecs.rvforge_build_tree_ready`
        and the audit, and passes on in a copy of the spec.
    :param auditors: names of the auditors to run (default: all registered).
    :param audit: ``enforce`` (errors stop the build), ``warn-only`` (errors are reported
        but the build goes on) or ``off``.
    :param deep: auditors sweep instructions, not only ELF attributes.
    :param artifact_kind: what the packer writes (``initramfs``, ``disk``, ``tar``); the
        pipeline fills it in from the packer (the hooks' spec has it).
    """

    provider: Step
    overlays: list[Step]
    packer: Step
    format: str
    output: Path
    machine: Machine | None
    auditors: list[str] | None = None
    audit: str = "enforce"
    deep: bool = False
    artifact_kind: str | None = None


@dataclass
class AuditReport:
    """The findings of every auditor on one tree, per-file facts, and the finding codes
    the auditors that ran declare (:attr:`rvforge.Auditor.codes`)."""

    machine: Machine
    findings: list[Finding] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    auditors: list[str] = field(default_factory=list)
    codes: dict[str, FindingCode] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.path or "", f.code))


@dataclass
class BuildReport:
    """What a build did.

    :param artifact: the output (path, format, sha256, size).
    :param stats: entry counts by kind and file bytes of the final tree.
    :param audit: the audit report (empty when the audit was off).
    :param timings: seconds per phase (``provide``, ``overlay:NAME``, ``audit``, ``pack``).
    """

    spec: BuildSpec
    artifact: Artifact
    stats: TreeStats
    audit: AuditReport
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": {
                "path": str(self.artifact.path), "kind": self.artifact.kind,
                "format": self.artifact.format, "sha256": self.artifact.sha256,
                "size": self.artifact.size,
            },
            "entries": self.stats.counts,
            "file_bytes": self.stats.file_bytes,
            "machine": self.audit.machine.name,
            "isa": self.audit.machine.isa,
            "findings": [f.to_json() for f in self.audit.sorted_findings()],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass
class BuildFlags:
    """What the command line says about a build; ``None`` (or empty) is "not given", so
    ``rvforge.toml`` or the default applies.

    :param provider_values: the provider options with flags of their own (``source``,
        ``release``, ``mirror``, ``package``).
    :param extra_args: the rest of the command line, parsed against the provider's
        ``Options`` (``--variant minbase``).
    :param overlays: ``--overlay SRC:DEST`` values, in order.
    :param audit: ``off``, ``warn-only``, or ``None`` for the config's (default enforce).
    """

    provider: str | None = None
    output: Path | None = None
    packer: str | None = None
    machine: str | None = None
    isa: str | None = None
    deep: bool | None = None
    init: bool | None = None
    audit: str | None = None
    provider_values: dict[str, Any] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    overlays: list[str] = field(default_factory=list)

    def build_settings(self) -> dict[str, Any]:
        """The ``[build]``-table keys the command line sets."""
        values = {"provider": self.provider, "output": self.output, "packer": self.packer,
                  "machine": self.machine, "isa": self.isa, "deep": self.deep,
                  "init": self.init, "audit": self.audit}
        return {k: v for k, v in values.items() if v is not None}


def resolve_spec(registry: Registry, config: Config, flags: BuildFlags, ctx: BuildContext
                 ) -> BuildSpec:
    """Merge ``rvforge.toml`` and the command line (which wins) into a :class:`BuildSpec`.

    ``ctx`` is used to work out the machine's ISA (its launcher may ask QEMU)."""
    settings = {**config.build, **flags.build_settings()}
    provider_name = settings.get("provider")
    if not provider_name:
        known = ", ".join(registry.providers.names())
        raise UsageError(f"no provider: pass --provider NAME (known: {known}) or set "
                         "[build] provider in rvforge.toml")
    provider_cls = registry.providers.get(provider_name)
    owner = f"provider {provider_name!r}"
    base = config.path.parent if config.path is not None else None
    values = relative_to(provider_cls.Options, config.provider, base)
    values.update({k: v for k, v in flags.provider_values.items() if v is not None})
    values.update(parse_extra_args(provider_cls.Options, flags.extra_args, owner=owner))
    provider_options = build_options(provider_cls.Options, values, owner=owner)

    output = Path(settings.get("output") or default_output(provider_cls(), provider_options))
    if "output" not in flags.build_settings() and base is not None and settings.get("output"):
        output = base / expand_user(output, "[build] output")  # an absolute one stays
    if settings.get("packer"):
        packer_cls = registry.packers.get(settings["packer"])
        fmt = format_for(packer_cls, output.name)
    else:
        packer_cls, fmt = registry.packer_for(output.name)

    steps = [overlay_step(registry, table, "rvforge.toml [[overlay]]", base) for table in
             config.overlays]
    steps += [overlay_step(registry, parse_overlay_flag(flag), f"--overlay {flag}")
              for flag in flags.overlays]
    init = settings.get("init")
    if init or (init is None and packer_cls.kind == "initramfs" and "init" in
                registry.overlays):
        steps.append(Step("init", build_options(registry.overlays.get("init").Options,
                                                {"replace": bool(init)}, owner="overlay 'init'")))

    machine = resolve_build_machine(registry, settings.get("machine"), settings.get("isa"),
                                    provider_cls().default_machine(provider_options), ctx)
    audit = settings.get("audit", "enforce")
    if audit not in AUDIT_MODES:
        raise UsageError(f"audit must be one of {', '.join(AUDIT_MODES)}, not {audit!r}")
    auditors = settings.get("auditors")
    if auditors is not None:
        for name in auditors:
            registry.auditors.get(name)
    return BuildSpec(Step(provider_name, provider_options), steps,
                     Step(packer_cls.name, None), fmt, output, machine, auditors, audit,
                     deep=bool(settings.get("deep", False)))


def resolve_build_machine(registry: Registry, name: str | None, isa: str | None,
                          suggested: str | None, ctx: BuildContext) -> Machine | None:
    """The build's target: ``--machine``/``--isa``, else the machine the provider suggests
    for its images (an RVA23 release: an RVA23 machine), else the registry's default;
    ``None`` for ``--machine auto`` (the pipeline picks it from the tree)."""
    if name == AUTO_MACHINE and not isa:
        registry.machines.get(name)  # a registry without core's built-ins does not know it
        return None
    if name or isa or not suggested:
        return registry.resolve_machine(name, isa, ctx)
    try:
        return registry.resolve_machine(suggested, None, ctx)
    except UsageError as error:
        raise UsageError(f"{error} (it is the default machine for this image: pass --machine "
                         "NAME, or --isa to audit for a CPU without booting)") from None


def default_output(provider: Provider[Any], options: Any) -> str:
    """``build/<provider>-<release>-riscv64.cpio.gz``; a description that is not one plain
    file-name component (``--release ../../x``) is refused rather than followed."""
    name = provider.describe(options)
    if not _OUTPUT_STEM.fullmatch(name) or ".." in name:
        raise UsageError(f"the default output name {name[:80]!r} (from the provider's options, "
                         "e.g. --release) is not a plain file name; pass -o PATH")
    return f"build/{name}-riscv64.cpio.gz"


_OUTPUT_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")


def parse_overlay_flag(flag: str) -> dict[str, Any]:
    """``SRC:DEST`` → the options of a ``dir`` or ``file`` overlay (by what SRC is)."""
    source, sep, dest = flag.rpartition(":")
    if not sep or not source or not dest.startswith("/"):
        raise UsageError(f"--overlay {flag!r}: expected SRC:DEST with DEST an absolute path "
                         "in the image, e.g. --overlay ./payload:/opt/payload")
    path = expand_user(source, "--overlay")
    if not path.exists():
        raise UsageError(f"--overlay {flag!r}: {source} does not exist")
    return {"name": "dir" if path.is_dir() else "file", "source": str(path), "dest": dest}


def overlay_step(registry: Registry, table: dict[str, Any], where: str,
                 base: Path | None = None) -> Step:
    """The overlay step an ``[[overlay]]`` table (or a parsed ``--overlay``) describes;
    relative paths of a table from a config file are relative to ``base``, its directory."""
    values = dict(table)
    name = values.pop("name")
    overlay_cls = registry.overlays.get(name)
    values = relative_to(overlay_cls.Options, values, base)
    return Step(name, build_options(overlay_cls.Options, values, owner=f"overlay {name!r} "
                                    f"({where})"))


def format_for(packer_cls: type[Packer], output_name: str) -> str:
    """The format ``packer_cls`` writes for ``output_name`` (its longest matching suffix,
    else its first)."""
    for suffix in sorted(packer_cls.suffixes, key=len, reverse=True):
        if output_name.endswith(suffix):
            return suffix.lstrip(".")
    if not packer_cls.suffixes:
        return packer_cls.name
    return packer_cls.suffixes[0].lstrip(".")
