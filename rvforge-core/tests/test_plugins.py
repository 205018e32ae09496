"""The plugin framework: built-ins as plugins, entry-point loading, failures, duplicates,
allow/deny lists, and the testing helpers — with real distributions on sys.path."""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_types import RunRvforge

import rvforge
from rvforge.context import BuildContext
from rvforge.errors import DuplicateComponentError, PluginError, UnknownComponentError
from rvforge.plugins import BUILTIN_PLUGINS, PluginManager, get_plugin_manager
from rvforge.registry import Registry
from rvforge.testing import registered_plugin


def make_distribution(site: Path, dist: str, module: str, source: str,
                      entry_name: str | None = None) -> None:
    """Install a real (unpacked) distribution into ``site``: module + dist-info with an
    ``rvforge`` entry point, as pip would lay it out."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[rvforge]\n{entry_name or dist} = {module}\n")


PROVIDER_PLUGIN = """
    import rvforge

    class P(rvforge.Provider):
        name = "{name}"
        summary = "test provider"

        def provide(self, options, ctx):
            return rvforge.Tree()

    @rvforge.hookimpl
    def rvforge_register_providers(register):
        register(P)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def cli_env(site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(site), **extra}


def test_builtins_are_plugins_on_the_same_manager(rvforge_plugin_manager: PluginManager) -> None:
    pm = rvforge_plugin_manager
    for name in BUILTIN_PLUGINS:
        assert pm.has_plugin(name) and pm.info(name).builtin
    registry = Registry(pm)
    assert "local" in registry.providers
    assert {"dir", "file", "init"} <= set(registry.overlays.names())
    assert registry.providers.plugin_of("local") == "rvforge.builtin.local_provider"


def test_plugins_lists_installed_distributions_as_json(rvforge_cli: RunRvforge) -> None:
    result = rvforge_cli("plugins", "--format", "json", check=True)
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    example = plugins["example"]
    assert example["distribution"] == "rvforge-example-provider"
    assert example["version"] == "0.1.0"
    assert example["hooks"] == ["rvforge_register_providers"]
    assert example["components"]["providers"][0]["name"] == "skeleton"
    assert example["components"]["providers"][0]["options"] == ["--hostname", "--source"]
    for dist in ("rvforge-alpine", "rvforge-debootstrap", "rvforge-qemu"):
        assert any(p["distribution"] == dist for p in plugins.values()), dist


def test_a_broken_plugin_is_reported_and_the_rest_keep_working(
        rvforge_cli: RunRvforge, site: Path) -> None:
    make_distribution(site, "rvforge-broken", "rvforge_broken",
                      "raise ImportError('needs libfoo')\n")
    result = rvforge_cli("plugins", "--format", "json", env=cli_env(site))
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    broken = plugins["rvforge-broken"]
    assert (broken["distribution"], broken["version"]) == ("rvforge-broken", "1.2.3")
    assert "ImportError: needs libfoo" in broken["error"]
    assert "example" in plugins and plugins["example"]["error"] is None
    assert "plugin failed to load" in result.stderr


def test_strict_mode_makes_a_broken_plugin_fatal(rvforge_cli: RunRvforge, site: Path) -> None:
    make_distribution(site, "rvforge-broken", "rvforge_broken", "1/0\n")
    result = rvforge_cli("plugins", env=cli_env(site, RVFORGE_STRICT_PLUGINS="1"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rvforge: error: plugin 'rvforge-broken' (rvforge-broken 1.2.3) failed to load: "
        "ZeroDivisionError: division by zero (unset RVFORGE_STRICT_PLUGINS to skip it)"]


def test_a_plugin_whose_hook_raises_is_skipped(rvforge_cli: RunRvforge, site: Path) -> None:
    make_distribution(site, "rvforge-hookfail", "rvforge_hookfail", """
        import rvforge

        @rvforge.hookimpl
        def rvforge_register_packers(register):
            raise RuntimeError("oops")
    """)
    result = rvforge_cli("plugins", "--format", "json", env=cli_env(site))
    assert result.returncode == 0, result.stderr
    failed = [p for p in json.loads(result.stdout) if p["error"]]
    assert failed and "rvforge_register_packers: RuntimeError: oops" in failed[0]["error"]


def test_duplicate_component_names_name_both_plugins(rvforge_cli: RunRvforge, site: Path) -> None:
    make_distribution(site, "rvforge-clash", "rvforge_clash",
                      PROVIDER_PLUGIN.format(name="local"))
    result = rvforge_cli("plugins", env=cli_env(site))
    assert result.returncode == 2
    assert ("provider 'local' is registered by both plugin 'rvforge.builtin.local_provider' "
            "and plugin 'rvforge-clash'") in result.stderr
    assert "Traceback" not in result.stderr


def test_allow_list_and_deny_list(rvforge_cli: RunRvforge, site: Path) -> None:
    make_distribution(site, "rvforge-extra", "rvforge_extra", PROVIDER_PLUGIN.format(name="x"))

    def names(**env: str) -> set[str]:
        result = rvforge_cli("plugins", "--format", "json", env=cli_env(site, **env))
        assert result.returncode == 0, result.stderr
        return {p["name"] for p in json.loads(result.stdout) if not p["builtin"]}

    assert names(RVFORGE_LOAD_PLUGINS="") == set()
    assert names(RVFORGE_LOAD_PLUGINS="rvforge-extra,rvforge-example-provider") == {
        "rvforge-extra", "example"}
    assert "rvforge-extra" not in names(RVFORGE_DISABLE_PLUGINS="rvforge-extra")
    assert "example" not in names(RVFORGE_DISABLE_PLUGINS="example")


def test_unknown_names_list_the_known_ones_and_suggest(
        rvforge_plugin_manager: PluginManager) -> None:
    registry = Registry(rvforge_plugin_manager)
    with pytest.raises(UnknownComponentError) as info:
        registry.providers.get("locl")
    assert str(info.value) == "unknown provider 'locl' (known: local); did you mean 'local'?"


def test_registered_plugin_is_temporary(
        rvforge_plugin_manager: PluginManager, rvforge_registry: Callable[[], Registry]) -> None:
    class Extra(rvforge.Overlay):
        name = "extra"

        def apply(self, tree: rvforge.Tree, options: None, ctx: BuildContext) -> None:
            tree.add_file("/extra", b"")

    plugin = types.SimpleNamespace(
        rvforge_register_overlays=rvforge.hookimpl(lambda register: register(Extra)))
    with registered_plugin(rvforge_plugin_manager, plugin, "extra-plugin"):
        registry = rvforge_registry()
        assert registry.overlays.get("extra") is Extra
        assert registry.overlays.plugin_of("extra") == "extra-plugin"
    assert "extra" not in rvforge_registry().overlays


def test_registering_a_non_component_is_a_plugin_error(
        rvforge_plugin_manager: PluginManager) -> None:
    plugin = types.SimpleNamespace(
        rvforge_register_providers=rvforge.hookimpl(lambda register: register(object)))
    with registered_plugin(rvforge_plugin_manager, plugin, "bad"):
        registry = Registry(rvforge_plugin_manager)
    assert "extra" not in registry.providers
    assert any("pass a subclass of rvforge.Provider" in (f.error or "")
               for f in rvforge_plugin_manager.failures)


def test_two_packers_claiming_one_suffix_is_an_error(rvforge_plugin_manager: PluginManager) -> None:
    def packer(name: str) -> type[rvforge.Packer]:
        return type(name, (rvforge.Packer,), {"name": name, "suffixes": (".img",),
                                              "pack": lambda self, *args: None})

    plugin = types.SimpleNamespace(rvforge_register_packers=rvforge.hookimpl(
        lambda register: [register(packer("one")), register(packer("two"))]))
    with registered_plugin(rvforge_plugin_manager, plugin, "dup-suffix"):
        with pytest.raises(DuplicateComponentError, match="both claim the output suffix"):
            Registry(rvforge_plugin_manager)


def test_a_fresh_manager_each_time() -> None:
    first, second = get_plugin_manager(load_entrypoints=False), get_plugin_manager(
        load_entrypoints=False)
    assert first is not second
    assert not first.failures and all(i.builtin for i in first.infos.values())


def test_strict_registration_failure_raises(
        monkeypatch: pytest.MonkeyPatch, rvforge_plugin_manager: PluginManager) -> None:
    monkeypatch.setenv("RVFORGE_STRICT_PLUGINS", "1")
    plugin = types.SimpleNamespace(rvforge_register_kernels=rvforge.hookimpl(
        lambda register: 1 / 0))
    with registered_plugin(rvforge_plugin_manager, plugin, "kaput"):
        with pytest.raises(PluginError, match="'kaput'.*rvforge_register_kernels"):
            Registry(rvforge_plugin_manager)


def test_registration_goes_through_pluggys_hook_caller(
        rvforge_plugin_manager: PluginManager) -> None:
    """Hook-call monitors (and so RVFORGE_TRACE_PLUGINS' tracing) see every registration
    call, one per implementing plugin, with the plugin's implementation."""
    calls: list[tuple[str, list[str]]] = []
    undo = rvforge_plugin_manager.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, [i.plugin_name for i in impls])),
        lambda outcome, name, impls, kwargs: None)
    try:
        registry = Registry(rvforge_plugin_manager)
    finally:
        undo()
    assert ("rvforge_register_packers", ["rvforge.builtin.packers"]) in calls
    assert ("rvforge_register_auditors", ["rvforge.builtin.auditors"]) in calls
    implementing = sum(len(getattr(rvforge_plugin_manager.hook, name).get_hookimpls())
                       for name in {name for name, _ in calls})
    assert len(calls) == implementing and len(registry.packers) >= 3


def test_tracing_shows_registration_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from structlog.testing import capture_logs

    monkeypatch.setenv("RVFORGE_TRACE_PLUGINS", "1")
    with capture_logs() as logs:
        Registry(get_plugin_manager(load_entrypoints=False))
    traced = [entry["trace"] for entry in logs if entry.get("event") == "hook"]
    assert any("rvforge_register_packers" in line for line in traced), traced


def test_the_manager_records_a_plugin_whose_registration_failed(
        rvforge_plugin_manager: PluginManager) -> None:
    plugin = types.SimpleNamespace(rvforge_register_kernels=rvforge.hookimpl(
        lambda register: 1 / 0))
    with registered_plugin(rvforge_plugin_manager, plugin, "kaput"):
        Registry(rvforge_plugin_manager)
        assert not rvforge_plugin_manager.has_plugin("kaput")
        assert "kaput" not in rvforge_plugin_manager.infos
        [failure] = rvforge_plugin_manager.failures
        assert (failure.name, failure.error) == (
            "kaput", "rvforge_register_kernels: ZeroDivisionError: division by zero")


def test_example_plugin_builds_through_the_real_cli(
        rvforge_cli: RunRvforge, tmp_path: Path) -> None:
    """The example third-party provider, installed as a distribution, drives a build."""
    out = tmp_path / "skeleton.tar"
    result = rvforge_cli("build", "--provider", "skeleton", "--hostname", "rv", "-o", str(out),
                         "--no-audit")
    if "no packer writes" in result.stderr:
        pytest.fail("the tar packer is not registered")
    assert result.returncode == 0, result.stderr
    import tarfile

    with tarfile.open(out) as archive:
        names = archive.getnames()
        assert (archive.extractfile("./etc/hostname" if "./etc/hostname" in names
                                   else "etc/hostname") or io.BytesIO()).read() == b"rv\n"




MISSPELT_HOOK = """
    import rvforge

    class P(rvforge.Provider):
        name = "typo"

        def provide(self, options, ctx):
            return rvforge.Tree()

    @rvforge.hookimpl
    def rvforge_register_provider(register):
        register(P)
"""

RAISING_HOOK = """
    import rvforge

    class O(rvforge.Overlay):
        name = "half-registered"

        def apply(self, tree, options, ctx):
            pass

    @rvforge.hookimpl
    def rvforge_register_overlays(register):
        register(O)

    @rvforge.hookimpl
    def rvforge_register_packers(register):
        raise RuntimeError("oops")
"""


def build_a_tar(rvforge_cli: RunRvforge, site: Path, tmp_path: Path, **env: str
                ) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "root"
    (source / "etc").mkdir(parents=True, exist_ok=True)
    (source / "etc" / "hostname").write_text("rv\n")
    return rvforge_cli("build", "--provider", "local", "--source", str(source), "-o",
                       str(tmp_path / "out.tar"), env=cli_env(site, **env))


@pytest.mark.parametrize(("source", "error"), [
    (MISSPELT_HOOK, "implements 'rvforge_register_provider', which is not an rvforge hook; "
                    "did you mean 'rvforge_register_providers'?"),
    (RAISING_HOOK, "rvforge_register_packers: RuntimeError: oops"),
], ids=["misspelt hook", "raising hook"])
def test_a_plugin_with_a_bad_hook_is_named_and_skipped_by_every_command(
        rvforge_cli: RunRvforge, site: Path, tmp_path: Path, source: str, error: str) -> None:
    make_distribution(site, "rvforge-bad", "rvforge_bad", source)
    version = rvforge_cli("--version", env=cli_env(site))  # from metadata: nothing loads
    assert version.returncode == 0, version.stderr
    assert "plugin rvforge-bad: rvforge-bad 1.2.3" in version.stdout
    listed = rvforge_cli("plugins", "--format", "json", env=cli_env(site))
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert error in plugins["rvforge-bad"]["error"] and not plugins["rvforge-bad"]["hooks"]
    assert "example" in plugins and plugins["example"]["error"] is None
    built = build_a_tar(rvforge_cli, site, tmp_path)
    assert built.returncode == 0, built.stderr
    assert "Traceback" not in built.stderr and "rvforge-bad" in built.stderr
    assert "half-registered" not in rvforge_cli("plugins", env=cli_env(site)).stdout


def test_strict_mode_makes_a_misspelt_hook_fatal(
        rvforge_cli: RunRvforge, site: Path, tmp_path: Path) -> None:
    make_distribution(site, "rvforge-bad", "rvforge_bad", MISSPELT_HOOK)
    built = build_a_tar(rvforge_cli, site, tmp_path, RVFORGE_STRICT_PLUGINS="1")
    assert built.returncode == 2
    assert built.stderr.strip().splitlines() == [
        "rvforge: error: plugin 'rvforge-bad' (rvforge-bad 1.2.3) failed to load: "
        "PluginError: implements 'rvforge_register_provider', which is not an rvforge hook; "
        "did you mean 'rvforge_register_providers'? (unset RVFORGE_STRICT_PLUGINS to skip it)"]
    assert not (tmp_path / "out.tar").exists()


def test_a_component_missing_an_abstract_method_is_refused_naming_the_plugin(
        rvforge_plugin_manager: PluginManager) -> None:
    class Lazy(rvforge.Provider):
        name = "lazy"

    plugin = types.SimpleNamespace(
        rvforge_register_providers=rvforge.hookimpl(lambda register: register(Lazy)))
    with registered_plugin(rvforge_plugin_manager, plugin, "lazy-plugin"):
        registry = Registry(rvforge_plugin_manager)
    assert "lazy" not in registry.providers
    [failure] = rvforge_plugin_manager.failures
    assert failure.name == "lazy-plugin"
    assert failure.error == (
        "rvforge_register_providers: PluginError: plugin 'lazy-plugin': provider class Lazy "
        "does not implement provide (abstract in rvforge.Provider)")
