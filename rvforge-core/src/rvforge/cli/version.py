"""``rvforge --version``: rvforge-core's version and the plugins installed, from package
metadata alone (no plugin is imported; ``rvforge plugins`` loads them and reports
failures)."""

from __future__ import annotations

import importlib.metadata


def version_text() -> str:
    """``rvforge X.Y.Z`` and a line per external plugin the allow/deny lists select."""
    from rvforge.plugins import selected_entry_points

    lines = [f"rvforge {importlib.metadata.version('rvforge-core')}"]
    for _, info in selected_entry_points():
        lines.append(f"  plugin {info.name}: {info.distribution} {info.version}")
    return "\n".join(lines)
