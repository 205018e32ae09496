"""Component options from CLI flags and rvforge.toml, and the config file itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rvforge import UsageError
from rvforge.config import load_config
from rvforge.options import (
    OptionSpec,
    build_options,
    declared_options,
    launch_limits,
    option,
    parse_extra_args,
)

BAD = Path(__file__).resolve().parents[2] / "tests" / "bad_inputs"


@dataclass
class Opts:
    release: str = "edge"
    package: list[str] = field(default_factory=list)
    jobs: int = 4
    verify: bool = True
    keyring: Path | None = None


@dataclass
class Declared:
    port: str = option("The serial port.", default="/dev/ttyUSB0", metavar="DEVICE")
    share: list[str] = option("A share. Repeatable.", default_factory=list)
    stream: bool = option("Set by rvforge.", default=False, commands=())
    plain: int = 3


def test_declared_options_read_back_help_metavar_and_commands() -> None:
    assert declared_options(Declared) == [
        OptionSpec("port", str, "The serial port.", "DEVICE", ("boot", "run")),
        OptionSpec("share", list, "A share. Repeatable.", "", ("boot", "run")),
        OptionSpec("stream", bool, "Set by rvforge.", "", ()),
        OptionSpec("plain", int, "", "", ("boot", "run")),
    ]
    assert Declared().share == [] and Declared().share is not Declared().share
    assert build_options(Declared, {"share": ("a", "b")}, owner="x").share == ["a", "b"]


@pytest.mark.parametrize(("values", "message"), [
    ({"timeout": "0"}, "--timeout wants a number of seconds above 0"),
    ({"timeout": "nan"}, "--timeout wants a finite number"),
    ({"memory": 0}, "--memory wants at least 1"),
    ({"cpus": 1.5}, "--cpus wants a whole number"),
])
def test_launch_limits_refuse_what_no_launcher_can_use(values: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(UsageError, match=message):
        launch_limits(values)


def test_launch_limits_leave_what_was_not_given_out() -> None:
    assert launch_limits({"memory": 512}) == {"memory": 512}
    assert launch_limits({"timeout": "2.5"}) == {"timeout": 2.5}


def test_extra_flags_follow_the_dataclass() -> None:
    values = parse_extra_args(Opts, ["--package", "a", "--package=b", "--jobs", "8",
                                     "--no-verify", "--keyring", "~/k.gpg"], owner="x")
    opts = build_options(Opts, values, owner="x")
    assert opts.package == ["a", "b"] and opts.jobs == 8 and opts.verify is False
    assert opts.keyring == Path("~/k.gpg").expanduser()


def test_unknown_flag_names_the_component_and_what_it_takes() -> None:
    with pytest.raises(UsageError) as info:
        parse_extra_args(Opts, ["--variant", "minbase"], owner="provider 'alpine'")
    assert str(info.value) == ("provider 'alpine' does not take --variant (it takes: "
                               "--release, --package, --jobs, --verify, --keyring)")


@pytest.mark.parametrize("values, message", [
    ({"jobs": "many"}, "--jobs wants a number"),
    ({"verify": "perhaps"}, "--verify wants true or false"),
    ({"release": ["a", "b"]}, "--release wants one value"),
])
def test_bad_values(values: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_options(Opts, values, owner="x")


def test_toml_values_coerce_like_flags() -> None:
    opts = build_options(Opts, {"package": "one", "jobs": 2, "verify": "no"}, owner="x")
    assert (opts.package, opts.jobs, opts.verify) == (["one"], 2, False)


def test_full_config(tmp_path: Path) -> None:
    path = tmp_path / "rvforge.toml"
    path.write_text("""
[build]
provider = "alpine"
output = "out/a.cpio.zst"
audit = "warn-only"

[provider]
release = "3.20"
package = ["python3"]

[[overlay]]
name = "dir"
source = "payload"
dest = "/opt/payload"

[machines.big]
launcher = "qemu-virt"
memory = 8192
cpus = 4
cpu = "rv64,v=true,vlen=256,elen=64"

[plugin.example]
colour = "blue"
""")
    config = load_config(path)
    assert config.build["provider"] == "alpine" and config.provider["package"] == ["python3"]
    assert config.overlays == [{"name": "dir", "source": "payload", "dest": "/opt/payload"}]
    (machine,) = config.machines
    assert (machine.name, machine.memory_mb, machine.cpus) == ("big", 8192, 4)
    assert machine.options == {"cpu": "rv64,v=true,vlen=256,elen=64"}
    assert config.plugins == {"example": {"colour": "blue"}}


@pytest.mark.parametrize("name, message", [
    ("bad-syntax.toml", "invalid TOML"),
    ("unknown-key.toml", "unknown key 'provder'"),
    ("bad-audit-mode.toml", "audit must be one of enforce, warn-only, off"),
])
def test_bad_config_files(name: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_config(BAD / name)


def test_missing_config_and_default_location(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.chdir(tmp_path)
    assert load_config(None).path is None
    (tmp_path / "rvforge.toml").write_text('[build]\nprovider = "local"\n')
    assert load_config(None).build == {"provider": "local"}
