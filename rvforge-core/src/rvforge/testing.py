"""pytest helpers for plugin authors. Opt in, as with tox's ``tox.pytest``: run
``pytest -p rvforge.testing`` or put ``pytest_plugins = ["rvforge.testing"]`` in your
top-level ``conftest.py`` (the helpers below import without it; the fixtures need it).
Installing rvforge-core loads nothing into other projects' pytest sessions.

Fixtures:

``rvforge_plugin_manager``
    A fresh plugin manager with rvforge's built-in plugins only (no entry points), so a
    test sees exactly the plugins it registers.
``rvforge_registry``
    A function returning the :class:`~rvforge.registry.Registry` built from that manager
    as it is now (call it after registering your plugin).
``rvforge_context``
    A :class:`~rvforge.BuildContext` on that registry with a private cache and scratch
    directory.

Context managers:

:func:`registered_plugin`
    ``with registered_plugin(pm, MyPlugin()): ...`` registers a temporary plugin and
    unregisters it afterwards.
:func:`loopback_mirror`
    ``with loopback_mirror(directory) as mirror: ...`` serves a directory over real HTTP on
    127.0.0.1 (with ``Range`` support and injectable faults: dropped connections, error
    statuses) so providers can be tested against a mirror without the internet.

Assertions:

:func:`assert_one_line_error`
    ``assert_one_line_error(completed, 2, "names the fix")``: the command failed with that
    exit status and exactly one ``rvforge: error:`` line on stderr, no traceback.

Example::

    from rvforge.testing import registered_plugin

    def test_my_provider(rvforge_plugin_manager, rvforge_registry):
        with registered_plugin(rvforge_plugin_manager, my_plugin_module):
            assert "mine" in rvforge_registry().providers
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rvforge.context import BuildContext
from rvforge.plugins import PluginInfo, PluginManager, get_plugin_manager
from rvforge.registry import Registry

__all__ = ["Fault", "LoopbackMirror", "assert_one_line_error", "loopback_mirror",
           "registered_plugin", "rvforge_context", "rvforge_plugin_manager", "rvforge_registry"]


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int,
                          message: str) -> None:
    """Assert that ``result`` (a finished ``rvforge`` command) exited ``code`` with one
    ``rvforge: error:`` line on stderr that contains ``message``, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("rvforge: error: "), result.stderr
    assert message in lines[0], lines[0]


@contextmanager
def registered_plugin(pm: PluginManager, plugin: object, name: str | None = None
                      ) -> Iterator[object]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) on ``pm`` for
    the duration of the ``with`` block."""
    name = name or getattr(plugin, "__name__", None) or f"test-plugin-{id(plugin)}"
    pm.register_plugin(plugin, PluginInfo(name, name, None, None))
    try:
        yield plugin
    finally:
        pm.forget(name)  # a no-op when a registry dropped it (its hook failed)


@pytest.fixture
def rvforge_plugin_manager() -> PluginManager:
    """A fresh manager holding only rvforge's built-in plugins."""
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def rvforge_registry(rvforge_plugin_manager: PluginManager) -> Callable[[], Registry]:
    """Build the registry from ``rvforge_plugin_manager`` as it is when called."""
    return lambda: Registry(rvforge_plugin_manager)


@pytest.fixture
def rvforge_context(rvforge_plugin_manager: PluginManager, tmp_path: Path
                    ) -> Iterator[BuildContext]:
    """A build context with a private cache and scratch directory."""
    with BuildContext(Registry(rvforge_plugin_manager), cache_dir=tmp_path / "cache",
                      scratch_dir=tmp_path / "scratch") as ctx:
        yield ctx


@dataclass
class Fault:
    """What the loopback mirror does wrong for one path.

    :param drop_after: on the first ``times`` requests, send this many bytes of the body
        and then close the connection (a dropped download).
    :param status: on the first ``times`` requests, answer with this HTTP status.
    :param times: how many requests misbehave before the path is served normally.
    :param redirect: answer ``302`` with this ``Location`` (a hostile mirror's redirect).
    :param endless: send the file, then zeros forever, without a ``Content-Length``.
    :param drip: send the body one byte every ``drip`` seconds (a stalling mirror).
    :param header_drip: send the status line and headers one byte every ``header_drip``
        seconds, for ever (a mirror that never finishes its headers).
    :param continues: answer ``100 Continue`` for ever, a final status never following.
    :param length: send this ``Content-Length`` (any text) with the file's body.
    """

    drop_after: int | None = None
    status: int | None = None
    times: int = 1
    redirect: str | None = None
    endless: bool = False
    drip: float | None = None
    header_drip: float | None = None
    continues: bool = False
    length: str | None = None


@dataclass
class LoopbackMirror:
    """A real HTTP server on 127.0.0.1 serving ``root`` (with ``Range`` support), standing
    in for a distribution mirror. ``faults`` maps URL paths to :class:`Fault`; ``requests``
    records each ``(path, range header)`` received, ``connections`` the client address of
    each connection that sent one (HTTP/1.1 keep-alive serves many on one)."""

    root: Path
    url: str = ""
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)


@contextmanager
def loopback_mirror(root: Path) -> Iterator[LoopbackMirror]:
    """Serve ``root`` over HTTP on a free loopback port for the ``with`` block."""
    import http.server
    import threading

    mirror = LoopbackMirror(Path(root))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:
                pass  # the client refused the response and hung up, as it may

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            mirror.requests.append((path, self.headers.get("Range")))
            mirror.connections.add(self.client_address)
            fault = mirror.faults.get(path)
            if fault is not None and fault.times > 0:
                fault.times -= 1
            else:
                fault = None
            if fault is not None and (fault.header_drip is not None or fault.continues):
                self._stall(fault)
                return
            if fault is not None and fault.status is not None:
                self._reply(fault.status, b"injected failure\n")
                return
            if fault is not None and fault.redirect is not None:
                self._reply(302, b"", location=fault.redirect)
                return
            target = (mirror.root / path.lstrip("/")).resolve()
            if mirror.root.resolve() not in target.parents or not target.is_file():
                self._reply(404, b"not found\n")
                return
            data = target.read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and ranged.endswith("-"):
                start = int(ranged[6:-1])
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if fault is not None and (fault.endless or fault.drip is not None):
                self._misbehave(body, fault)
                return
            length = fault.length if fault is not None and fault.length else str(len(body))
            self.send_header("Content-Length", length)
            self.send_header("Accept-Ranges", "bytes")
            if fault is not None and fault.length:
                self.send_header("Connection", "close")  # the body ends where it closes
                self.close_connection = True
            self.end_headers()
            if fault is not None and fault.drop_after is not None:
                self.wfile.write(body[: fault.drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

        def _reply(self, status: int, body: bytes, location: str | None = None) -> None:
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stall(self, fault: Fault) -> None:
            """Headers that never end: dripped, or ``100 Continue`` after ``100 Continue``."""
            import itertools
            import time

            self.close_connection = True
            try:
                if fault.continues:
                    while True:
                        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                        self.wfile.flush()
                        time.sleep(0.01)
                for index in itertools.count():
                    text = b"HTTP/1.1 200 OK\r\n" if index == 0 else b"X-Drip: 1\r\n"
                    for offset in range(len(text)):
                        self.wfile.write(text[offset:offset + 1])
                        self.wfile.flush()
                        time.sleep(fault.header_drip or 0)
            except OSError:
                pass  # the client gave up, as it should

        def _misbehave(self, body: bytes, fault: Fault) -> None:
            """An endless or dripping body (until the client hangs up)."""
            import itertools
            import time

            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            chunks: Iterator[bytes] = iter([body])
            if fault.endless:
                chunks = itertools.chain(chunks, itertools.repeat(b"\0" * 65536))
            try:
                for chunk in chunks:
                    if fault.drip is None:
                        self.wfile.write(chunk)
                        continue
                    for offset in range(len(chunk)):
                        self.wfile.write(chunk[offset:offset + 1])
                        self.wfile.flush()
                        time.sleep(fault.drip)
            except OSError:
                pass  # the client gave up, as it should

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
