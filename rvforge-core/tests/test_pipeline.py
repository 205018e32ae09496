"""The pipeline with a real plugin contributing one component of every family, and the
build hooks observing it."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rvforge
from rvforge import pipeline
from rvforge.context import BuildContext
from rvforge.errors import AuditFailedError, ExitCode
from rvforge.pipeline import BuildSpec, Step
from rvforge.plugins import PluginManager
from rvforge.registry import Registry
from rvforge.testing import registered_plugin


@dataclass
class TextOptions:
    text: str = "hello"


class TextProvider(rvforge.Provider):
    name = "text"
    Options = TextOptions

    def provide(self, options: TextOptions, ctx: rvforge.BuildContext) -> rvforge.Tree:
        tree = rvforge.Tree()
        tree.add_file("/etc/motd", options.text.encode())
        return tree


class MarkOverlay(rvforge.Overlay):
    name = "mark"

    def apply(self, tree: rvforge.Tree, options: None, ctx: BuildContext) -> None:
        tree.add_file("/bad" if ctx.settings.get("bad") else "/good", b"")


class BadFileAuditor(rvforge.Auditor):
    name = "no-bad"
    codes = (rvforge.FindingCode("bad-file", "A file called /bad", "remove /bad"),)

    def audit(self, tree: rvforge.Tree, machine: rvforge.Machine, ctx: BuildContext
              ) -> Iterator[rvforge.Finding | rvforge.FileRecord]:
        yield rvforge.FileRecord("/etc/motd", {"size": tree["/etc/motd"].size})
        if "/bad" in tree:
            yield rvforge.Finding(rvforge.Severity.ERROR, "bad-file", "/bad",
                                  f"/bad must not exist on {machine.name}")
        yield rvforge.Finding(rvforge.Severity.WARNING, "just-saying", None, "a warning")


class ListingPacker(rvforge.Packer):
    name = "listing"
    suffixes = (".lst",)
    kind = "tar"

    def pack(self, tree: rvforge.Tree, output: Path, fmt: str, ctx: BuildContext) -> None:
        with open(output, "w") as out:
            for entry in tree.walk():
                out.write(f"{entry.path}\n")
                if entry.path == "/fail":
                    raise rvforge.InputError("packer failed half-way")


def make_plugin(calls: list[str]) -> types.SimpleNamespace:
    hook = rvforge.hookimpl
    return types.SimpleNamespace(
        rvforge_register_providers=hook(lambda register: register(TextProvider)),
        rvforge_register_overlays=hook(lambda register: register(MarkOverlay)),
        rvforge_register_auditors=hook(lambda register: register(BadFileAuditor)),
        rvforge_register_packers=hook(lambda register: register(ListingPacker)),
        rvforge_build_start=hook(lambda spec, ctx: calls.append(f"start:{spec.provider.name}")),
        rvforge_build_tree_ready=hook(
            lambda tree, spec, ctx: calls.append(f"tree:{len(tree)}")),
        rvforge_build_finish=hook(
            lambda report, ctx: calls.append(f"finish:{report.artifact.format}")),
    )


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def registry(rvforge_plugin_manager: PluginManager, calls: list[str]) -> Iterator[Registry]:
    with registered_plugin(rvforge_plugin_manager, make_plugin(calls), "test-plugin"):
        yield Registry(rvforge_plugin_manager)


def spec_for(registry: Registry, output: Path, audit: str = "enforce") -> BuildSpec:
    machine = registry.machines.get("generic-rv64gc")
    return BuildSpec(Step("text", TextOptions("hi")), [Step("mark", None)],
                     Step("listing", None), "lst", output, machine, ["no-bad"], audit)


def test_build_runs_every_step_and_every_build_hook(
        registry: Registry, calls: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out" / "image.lst"
    with rvforge.BuildContext(registry, cache_dir=tmp_path / "c") as ctx:
        report = pipeline.build(registry, spec_for(registry, out), ctx)
    assert out.read_text().splitlines() == ["/", "/etc", "/etc/motd", "/good"]
    assert calls == ["start:text", "tree:4", "finish:lst"]
    assert report.artifact.path == out and len(report.artifact.sha256) == 64
    assert report.stats.counts == {"dir": 2, "file": 2}
    assert [f.code for f in report.audit.findings] == ["just-saying"]
    assert report.audit.findings[0].auditor == "no-bad"
    assert report.audit.files == {"/etc/motd": {"path": "/etc/motd", "size": 2}}
    assert {"provide", "overlay:mark", "audit", "pack"} <= set(report.timings)
    assert report.to_json()["artifact"]["format"] == "lst"


def test_audit_errors_stop_the_build_before_packing(
        registry: Registry, calls: list[str], tmp_path: Path) -> None:
    out = tmp_path / "image.lst"
    with rvforge.BuildContext(registry, settings={"bad": True}) as ctx:
        with pytest.raises(AuditFailedError) as info:
            pipeline.build(registry, spec_for(registry, out), ctx)
    assert info.value.exit_code == ExitCode.AUDIT
    assert "audit found 1 error(s)" in str(info.value) and "--audit-warn-only" in str(info.value)
    assert not out.exists() and calls == ["start:text", "tree:4"]


@pytest.mark.parametrize("mode, findings", [("warn-only", 2), ("off", 0)])
def test_warn_only_and_off_pack_anyway(
        registry: Registry, tmp_path: Path, mode: str, findings: int) -> None:
    out = tmp_path / "image.lst"
    with rvforge.BuildContext(registry, settings={"bad": True}) as ctx:
        report = pipeline.build(registry, spec_for(registry, out, mode), ctx)
    assert out.exists() and len(report.audit.findings) == findings


def test_a_failing_packer_leaves_no_output(registry: Registry, tmp_path: Path) -> None:
    class FailOverlay(rvforge.Overlay):
        name = "fail"

        def apply(self, tree: rvforge.Tree, options: None, ctx: BuildContext) -> None:
            tree.add_file("/fail", b"")

    registry.overlays.add("fail", FailOverlay, "test")
    out = tmp_path / "image.lst"
    spec = spec_for(registry, out)
    spec.overlays.append(Step("fail", None))
    with rvforge.BuildContext(registry) as ctx, pytest.raises(rvforge.InputError):
        pipeline.build(registry, spec, ctx)
    assert list(tmp_path.iterdir()) == []


def test_sarif_and_text_describe_a_third_party_auditors_codes_as_it_declares_them(
        registry: Registry, tmp_path: Path) -> None:
    from rvforge.cli.reporting import to_sarif, to_text

    tree = rvforge.Tree()
    tree.add_file("/etc/motd", b"hi")
    tree.add_file("/bad", b"")
    with rvforge.BuildContext(registry, cache_dir=tmp_path / "c") as ctx:
        report = pipeline.audit(registry, tree, registry.machines.get("generic-rv64gc"), ctx,
                                ["no-bad"])
    rules = {r["id"]: r for r in to_sarif(report)["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["bad-file"]["shortDescription"] == {"text": "A file called /bad"}
    assert rules["bad-file"]["help"] == {"text": "remove /bad"}
    assert rules["just-saying"]["shortDescription"] == {"text": "just-saying"}  # undeclared
    assert "help" not in rules["just-saying"]
    assert to_text(report).splitlines()[-1] == "fix bad-file: remove /bad"


def test_components_see_the_values_the_spec_fixes_and_the_callers_context_stays(
        registry: Registry, rvforge_plugin_manager: PluginManager, tmp_path: Path) -> None:
    seen: list[tuple[bool, str | None]] = []
    observer = types.SimpleNamespace(rvforge_build_start=rvforge.hookimpl(
        lambda spec, ctx: seen.append((ctx.deep, ctx.artifact_kind))))
    spec = dataclasses.replace(spec_for(registry, tmp_path / "image.lst"), deep=True)
    with registered_plugin(rvforge_plugin_manager, observer, "observer"):
        with rvforge.BuildContext(registry, cache_dir=tmp_path / "c") as ctx:
            report = pipeline.build(registry, spec, ctx)
            assert (ctx.deep, ctx.artifact_kind) == (False, None)
    assert seen == [(True, "tar")]  # ListingPacker.kind, filled in from the packer
    assert report.spec.artifact_kind == "tar" and report.spec.deep
