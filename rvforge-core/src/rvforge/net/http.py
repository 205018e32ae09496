"""The HTTP client of one build: a ``requests.Session`` shared by every download of a
:class:`~rvforge.BuildContext` (and the contexts copied from it), made on first use.

One session keeps connections to a mirror alive and looks its name up once, not once per
file: a Debian minbase is 77 downloads, and with a lookup each, a DNS reply lost now and
then cost the resolver's 5 s timeout (measured here: two such stalls in 77 fetches). The
connection pool holds as many connections per host as downloads run in parallel.

A request can be *watched* (:func:`watching`): every socket it connects or reads its
response from is handed to a callback, so an overall deadline can shut the socket down
wherever the request is blocked: connecting, waiting for (or receiving a drip of) the
response headers, or the body. urllib3's timeouts are per socket operation only, and
requests gives no handle on the connection before the headers have arrived; the hook is
urllib3's documented ``ConnectionCls`` of a pool class, chosen through the pool manager's
``pool_classes_by_scheme``.
"""

from __future__ import annotations

import contextvars
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

__all__ = ["HttpClient", "watching"]

USER_AGENT = "rvforge (https://github.com/rvforge/rvforge)"
POOL_SIZE = 16
"""Connections kept per host (more than any parallel download pool uses)."""


class HttpClient:
    """``get`` through one lazily made session; :meth:`close` releases its connections."""

    def __init__(self) -> None:
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """``requests.Session.get`` with rvforge's User-Agent."""
        return self._get_session().get(url, **kwargs)

    def _get_session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests  # imported on first use: it costs ~0.15 s at start-up

                session = requests.Session()
                adapter = _watched_adapter()(pool_connections=4, pool_maxsize=POOL_SIZE)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = USER_AGENT
                self._session = session
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


SocketWatcher = Callable[[socket.socket], None]
_WATCHER: contextvars.ContextVar[SocketWatcher | None] = contextvars.ContextVar(
    "rvforge_socket_watcher", default=None)
"""Per thread (a context variable, not shared state): who is told about the sockets of the
request this thread is making."""


@contextmanager
def watching(watcher: SocketWatcher) -> Iterator[None]:
    """Within the block, call ``watcher(sock)`` with each socket a request of this thread
    connects, sends on or reads a response from (through :class:`HttpClient`)."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def _announce(sock: object) -> None:
    watcher = _WATCHER.get()
    if watcher is not None and isinstance(sock, socket.socket):
        watcher(sock)


def _watched_adapter() -> type[requests.adapters.HTTPAdapter]:
    """An ``HTTPAdapter`` whose pools make connections that announce their sockets."""
    import requests
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class WatchedHTTPConnection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            _announce(self.sock)

        def getresponse(self) -> Any:
            _announce(self.sock)  # a kept-alive connection: connect() is not called again
            return super().getresponse()

    class WatchedHTTPSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            _announce(self.sock)

        def getresponse(self) -> Any:
            _announce(self.sock)
            return super().getresponse()

    class WatchedHTTPPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    pools = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}

    class WatchedAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return WatchedAdapter
