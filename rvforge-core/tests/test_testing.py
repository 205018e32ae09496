"""rvforge.testing and rvforge-qemu's pytest plugin are opt-in: installing rvforge loads
nothing into other projects' pytest sessions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SESSION = """
    import sys

    def test_nothing_of_rvforge_was_loaded():
        assert "rvforge.testing" not in sys.modules
        assert "rvforge_qemu.pytest_plugin" not in sys.modules

    def test_uses_the_fixture(rvforge_plugin_manager):
        assert rvforge_plugin_manager.has_plugin("rvforge.builtin.local_provider")
"""


def pytest_in(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(directory), *args, "test_session.py"],
                          capture_output=True, text=True, cwd=directory, timeout=120)


def test_the_helpers_load_only_into_sessions_that_opt_in(tmp_path: Path) -> None:
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION))
    plain = pytest_in(tmp_path)
    assert "1 passed, 1 error" in plain.stdout, plain.stdout
    assert "fixture 'rvforge_plugin_manager' not found" in plain.stdout
    opted_in = pytest_in(tmp_path, "-p", "rvforge.testing", "-k", "fixture")
    assert "1 passed" in opted_in.stdout, opted_in.stdout + opted_in.stderr
