"""The CLI contract: help, version, exit codes, one-line errors, log formats."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from fixture_types import RunRvforge
from typer.testing import CliRunner

from rvforge.cli import app

runner = CliRunner()


def test_help_documents_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for text in ("0 success", "2 usage error", "3 the audit found errors",
                 "4 the image did not boot", "125"):
        assert text in result.output


def test_version_lists_core_and_plugins() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"rvforge {importlib.metadata.version('rvforge-core')}"
    assert any("rvforge-example-provider 0.1.0" in line for line in lines)


def test_unknown_command_and_bad_option_are_usage_errors() -> None:
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2
    assert runner.invoke(app, ["--log-format", "xml", "plugins"]).exit_code == 2


def test_expected_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(tmp_path / "missing.cpio")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"rvforge: error: {tmp_path / 'missing.cpio'}: no such file or directory"]


def test_debug_shows_the_traceback(rvforge_cli: RunRvforge, tmp_path: Path) -> None:
    result = rvforge_cli("--debug", "inspect", str(tmp_path / "missing.cpio"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_json_logs_on_request(rvforge_cli: RunRvforge, tmp_path: Path) -> None:
    source = tmp_path / "root"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_text("rv\n")
    result = rvforge_cli("--log-format", "json", "audit", str(source))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert all("event" in r and "level" in r and "timestamp" in r for r in records)


def test_inspect_lists_a_directory_like_tar_tv(tmp_path: Path) -> None:
    import os

    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "su").write_bytes(b"x" * 10)
    os.chmod(root / "bin" / "su", 0o4755)
    os.symlink("su", root / "bin" / "link")
    os.utime(root / "bin" / "su", (0, 0))
    result = runner.invoke(app, ["inspect", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    owner = f"{os.getuid()}/{os.getgid()}"  # a directory keeps the host's owners
    assert f"-rwsr-xr-x {owner}         10 1970-01-01 00:00 /bin/su" in lines
    assert any(line.startswith("lrwxrwxrwx") and line.endswith("/bin/link -> su")
               for line in lines)
    data = json.loads(runner.invoke(app, ["inspect", "--format", "json", str(root)]).output)
    su = next(e for e in data if e["path"] == "/bin/su")
    assert su == {"path": "/bin/su", "type": "file", "mode": "4755", "uid": os.getuid(),
                  "gid": os.getgid(), "size": 10, "mtime": 0}


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`rvforge inspect X | head -1`: no error message when the reader goes away. (The
    listing is several times a pipe's buffer, so the writer cannot finish first.)"""
    root = tmp_path / "root"
    root.mkdir()
    for index in range(3000):
        (root / f"file-{index:05d}").touch()
    exe = str(Path(sys.executable).with_name("rvforge"))
    proc = subprocess.Popen([exe, "inspect", str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"d")
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait() == 141 and stderr == b"", stderr


def output_then_loaded(code: str, modules: tuple[str, ...]) -> list[str]:
    """The output lines of ``code`` run in a fresh interpreter, then ``loaded: [...]``: which
    of ``modules`` it imported."""
    probe = (f"import sys\n{code}\n"
             f"print('loaded:', [m for m in {modules!r} if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    return result.stdout.splitlines()


def test_version_imports_no_plugin_and_no_cli_framework(tmp_path: Path) -> None:
    """``rvforge --version`` is answered from package metadata: neither typer nor any
    plugin (nor pluggy, structlog, rich) is imported for it."""
    lines = output_then_loaded(
        "sys.argv = ['rvforge', '--version']\nfrom rvforge.cli import main; main()",
        ("typer", "rich", "structlog", "rvforge_alpine", "rvforge_qemu", "rvforge.builtin",
         "rvforge.registry"))
    assert lines[0] == f"rvforge {importlib.metadata.version('rvforge-core')}"
    assert "  plugin qemu: rvforge-qemu 0.1.0" in lines
    assert lines[-1] == "loaded: []"


def test_the_cli_loads_plugins_without_their_heavy_modules() -> None:
    """Every command starts by loading the plugins (their commands, then the registry):
    their entry modules and the command modules import the apk and deb readers, signature
    checks, the Debian archive and the build pipeline only when used (a warm ``rvforge run``
    pays every millisecond of start-up)."""
    lines = output_then_loaded(
        "import rvforge.cli.application\n"
        "from rvforge.registry import build_registry; build_registry()",
        ("rvforge.pipeline", "rvforge_alpine.apkfile", "rvforge_alpine.installer",
         "cryptography", "rvforge_debootstrap.archive", "rvforge_debootstrap.deb"))
    assert lines[-1] == "loaded: []", lines


def test_launch_help_lists_every_flag_the_installed_launchers_declare() -> None:
    """``boot``/``run``/``machines``/``build`` spell none of the launchers' flags: each comes
    from a launcher's ``Options`` declaration, with its help text."""
    from rvforge.launching import launcher_flags
    from rvforge.registry import build_registry

    registry = build_registry()
    for command in ("boot", "run", "build", "machines"):
        specs = launcher_flags(registry, command)
        result = runner.invoke(app, [command, "--help"], terminal_width=400,
                               env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        for spec in specs:
            assert spec.flag in text, (command, spec.flag)
            assert " ".join(spec.help.split())[:40] in text, (command, spec.flag)
    run_flags = {s.flag for s in launcher_flags(registry, "run")}
    assert {"--share", "--net", "--forward", "--append", "--qemu-arg", "--gdb", "--gdb-port",
            "--halted", "--console", "--qemu", "--kernel", "--timeout", "--memory", "--cpus",
            "--console-log"} <= run_flags
    assert "--interactive" in {s.flag for s in launcher_flags(registry, "boot")}
    assert "--interactive" not in run_flags and "--stream" not in run_flags


def test_the_launch_commands_spell_no_launcher_option() -> None:
    source = (Path(__file__).parents[1] / "src/rvforge/cli/launch.py").read_text()
    for flag in ("share", "net", "forward", "append", "qemu_arg", "gdb", "halted", "console",
                 "qemu", "kernel", "timeout", "memory", "cpus", "console_log", "interactive"):
        assert f"    {flag}:" not in source, flag
    common = (Path(__file__).parents[1] / "src/rvforge/cli/common.py").read_text()
    assert '"binary"' not in common


def test_the_one_private_typer_reach_still_resolves_and_shows_help(rvforge_cli: RunRvforge) -> None:
    """``rvforge.cli`` catches typer's public ``TyperException``; only the no-arguments
    help error has no public name (see ``_no_args_is_help_error``). A typer release that
    moves it fails here, not in users' hands."""
    import typer

    from rvforge.cli import _no_args_is_help_error

    assert issubclass(_no_args_is_help_error(), typer.TyperException)
    for args in ((), ("cache",)):
        result = rvforge_cli(*args)
        assert result.returncode == 2, result.stderr
        assert "Usage: rvforge" in result.stdout + result.stderr
        assert "rvforge: error:" not in result.stderr
    unknown = rvforge_cli("machines", "--no-such-flag")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("rvforge: error: No such option: --no-such-flag")
    assert "(see 'rvforge machines --help')" in unknown.stderr


def test_the_collector_is_held_during_start_up_and_runs_during_the_command(tmp_path: Path
                                                                           ) -> None:
    """``main`` holds the garbage collector while importing and parsing (start-up makes
    ~100 collections' worth of objects and no garbage), and every command runs with it on
    again: a long build must not grow."""
    probe = ("import functools, gc, sys\n"
             "runs = []\n"
             "gc.callbacks.append(lambda phase, info: phase == 'start' and runs.append(1))\n"
             "from rvforge.cli import common\n"
             "body = common.handle_errors\n"
             "def watching(func):\n"
             "    @functools.wraps(func)\n"
             "    def run(*a, **k):\n"
             "        print('start-up:', len(runs), flush=True)\n"
             "        garbage = [[n] for n in range(100_000)]\n"
             "        print('command:', len(runs) > 0, gc.isenabled(), flush=True)\n"
             "        return func(*a, **k)\n"
             "    return body(run)\n"
             "common.handle_errors = watching\n"
             "sys.argv = ['rvforge', 'cache', 'list']\n"
             "runs.clear()\n"
             "from rvforge.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "RVFORGE_CACHE_DIR": str(tmp_path)})
    assert result.stdout.splitlines()[:2] == ["start-up: 0", "command: True True"], \
        result.stdout + result.stderr
