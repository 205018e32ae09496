"""Verified, resumable, cached, bounded downloads for providers and kernel sources.

:func:`fetch` makes sure a cache path holds a URL's content with the expected digests:
a cached copy is re-verified before use (and fetched again when corrupt); a download is
streamed to a temporary name next to the destination, resumed with an HTTP ``Range``
request after a dropped connection, retried with backoff on network and server errors,
verified, and only then renamed into place. A checksum mismatch leaves nothing behind.

Everything a mirror sends is bounded: a file by the size its index states (else
:data:`FILE_CAP`), an index read into memory by :data:`INDEX_CAP`, and every fetch, retries
included, by an overall deadline (:func:`deadline_seconds`), not only per read. Redirects
are followed only to ``http(s)`` URLs, at most :data:`MAX_REDIRECTS` of them. A destination
outside the context's cache or scratch directory is refused before anything is written.

URLs may be ``http(s)://``, ``file://`` or plain local paths (a local mirror).
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urljoin, urlparse

from rvforge.context import BuildContext
from rvforge.errors import ChecksumMismatchError, InputError, UnsafePathError, UsageError
from rvforge.leftovers import part_path, sweep_stale_parts
from rvforge.numbers import is_decimal, parse_seconds
from rvforge.userfiles import open_regular

if TYPE_CHECKING:
    import requests

__all__ = ["NotFoundError", "check_mirror_url", "fetch", "fetch_bytes", "file_digests", "is_remote",
           "join_url", "local_path", "verify", "write_atomic"]

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
ATTEMPTS = 5
BACKOFF = 0.5
"""Seconds before the first retry; doubled for each further one."""
CHUNK = 1 << 20
STREAM_CHUNK = 1 << 16
"""Network reads: small enough that little is lost (and refetched) when a connection drops."""
INDEX_CAP = 256 << 20
"""Bytes of a file read into memory (an index, a checksum file): Debian's largest
``InRelease`` is ~0.2 MB, Alpine's ``APKINDEX.tar.gz`` ~1 MB."""
FILE_CAP = 16 << 30
"""Bytes of a downloaded file whose size no index states."""
DEADLINE = 600.0
"""Seconds every fetch may take beyond what its size needs at :data:`MIN_RATE`
(``$RVFORGE_FETCH_DEADLINE`` overrides it)."""
DEADLINE_ENV = "RVFORGE_FETCH_DEADLINE"
MAX_DEADLINE = 30 * 86400.0
"""Seconds no deadline exceeds (a larger one, or one a 20-digit size gives, is this): a
wait longer than ``threading.TIMEOUT_MAX`` raises ``OverflowError`` in the watchdog."""
MIN_RATE = 128 << 10
"""Bytes per second a download of known size is given on top of :data:`DEADLINE`."""
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


class NotFoundError(InputError):
    """The server (or local mirror) has no such file."""


class LimitExceededError(InputError):
    """A mirror sent more bytes than allowed, or took longer than the deadline."""


def join_url(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended by ``/`` (works for URLs and local paths)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def is_remote(url: str) -> bool:
    return _scheme(url) in ("http", "https")


def check_mirror_url(url: str, *, option: str = "--mirror") -> str:
    """Return ``url`` if it is a usable mirror: an ``http(s)://`` URL with a host, a
    ``file://`` URL or a local path; else raise :class:`UsageError` naming ``option``."""
    try:
        parsed = urlparse(url)
        _ = parsed.port  # parsing the port: "http://h:x" raises here
    except ValueError as error:
        raise UsageError(f"{option} {url!r}: not a valid URL ({error})") from None
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise UsageError(f"{option} {url!r}: the URL names no host")
    elif "://" in url and parsed.scheme != "file":
        raise UsageError(f"{option} {url!r}: unsupported scheme {parsed.scheme!r} "
                         "(use http://, https://, file:// or a local path)")
    if any(ord(c) < 32 or c == "\x7f" for c in url):
        raise UsageError(f"{option} {url!r}: contains control characters")
    return url


def local_path(url: str) -> Path:
    """The local file a ``file://`` URL or plain path names."""
    if _scheme(url) == "file":
        return Path(unquote(urlparse(url).path))
    return Path(url)


def deadline_seconds(size: int | None = None) -> float:
    """The overall deadline of one fetch: :data:`DEADLINE` (or ``$RVFORGE_FETCH_DEADLINE``)
    plus ``size`` at :data:`MIN_RATE`."""
    base = DEADLINE
    if text := os.environ.get(DEADLINE_ENV, "").strip():
        base = parse_seconds(text, f"${DEADLINE_ENV}", maximum=MAX_DEADLINE, error=UsageError)
    return min(base + (size or 0) / MIN_RATE, MAX_DEADLINE)


def file_digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    """Hex digests of ``path`` for each of ``algorithms`` (``sha256``, ``sha512``...)."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def verify(path: Path, digests: Mapping[str, str], label: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``path`` matches every digest."""
    if not digests:
        return
    actual = file_digests(path, list(digests))
    for algorithm, expected in digests.items():
        if actual[algorithm] != expected.lower():
            raise ChecksumMismatchError(label, algorithm, expected.lower(), actual[algorithm])


def check_inside(path: Path, roots: list[Path], label: str) -> None:
    """Raise :class:`UnsafePathError` unless ``path`` (its parent's symlinks resolved) lies
    under one of ``roots``: the last line of defence against a mirror value that became a
    path component unchecked."""
    real = Path(os.path.realpath(path.parent)) / path.name
    if path.name in ("", ".", "..") or not any(
            real.is_relative_to(os.path.realpath(root)) for root in roots):
        where = " or ".join(str(root) for root in roots)
        raise UnsafePathError(f"{label}: refusing to write {path}, which is outside {where}; "
                              "a mirror value tried to choose where files go")


def write_atomic(path: Path, data: bytes, *, within: Path | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary name next to it (parents created):
    readers and later runs see the whole file or nothing. With ``within``, a ``path``
    outside that directory is refused (:func:`check_inside`)."""
    if within is not None:
        check_inside(path, [within], path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(path)
    try:
        part.write_bytes(data)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def fetch(url: str, dest: Path, ctx: BuildContext, *, digests: Mapping[str, str] | None = None,
          size: int | None = None, label: str | None = None) -> Path:
    """Make ``dest`` hold ``url``'s content, verified against ``digests``; return ``dest``.

    :param dest: a path under ``ctx.cache_dir`` or the scratch directory (else refused).
    :param digests: algorithm → expected hex digest; all must match.
    :param size: expected size in bytes, if known: a mirror sending more is cut off there
        (without one, at :data:`FILE_CAP`).
    :param label: names the file in messages (default: its file name).
    """
    digests = dict(digests or {})
    label = label or dest.name
    roots = [ctx.cache_dir] + ([ctx.scratch_dir] if ctx.scratch_dir is not None else [])
    check_inside(dest, roots, label)
    if dest.exists():
        try:
            verify(dest, digests, f"{label} (cached at {dest})")
            ctx.log.debug("cache hit", file=label, path=str(dest))
            return dest
        except ChecksumMismatchError as error:
            ctx.log.warning("corrupt cache entry; fetching it again", file=label,
                            error=str(error))
            dest.unlink()
    if ctx.offline:
        raise InputError(f"{label}: not in the cache ({dest}) and {ctx.flag('offline')} "
                         f"forbids downloading it; run once without {ctx.flag('offline')}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_parts(dest.parent)
    part = part_path(dest)
    limit = size if size is not None else FILE_CAP
    try:
        if is_remote(url):
            _download(url, part, ctx, size, label, _Deadline(url, label, size))
        else:
            _copy_local(url, part, label, limit)
        if size is not None and part.stat().st_size != size:
            raise InputError(f"{label}: got {part.stat().st_size} bytes, expected {size}; "
                             "the mirror's file is truncated or changed")
        verify(part, digests, label)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def fetch_bytes(url: str, ctx: BuildContext, *, label: str | None = None,
                limit: int | None = None) -> bytes:
    """Fetch a small file (an index, a checksum file) into memory, with retries; more
    than ``limit`` bytes (default :data:`INDEX_CAP`), or more time than the deadline, is a
    :class:`LimitExceededError`."""
    label = label or url
    limit = INDEX_CAP if limit is None else limit
    if ctx.offline:
        raise InputError(f"{label}: needs the network and {ctx.flag('offline')} was given")
    if not is_remote(url):
        path = local_path(url)
        with _open_local(path, label, limit) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise _too_big(label, str(path), limit)
        return data
    deadline = _Deadline(url, label, None)
    last_error: BaseException | None = None
    for attempt in range(ATTEMPTS):
        try:
            with deadline.watch(), _get(url, label, ctx, deadline) as response:
                _refuse_length(response, url, label, limit)
                parts, got = [], 0
                for block in response.iter_content(STREAM_CHUNK):
                    got += len(block)
                    if got > limit:
                        raise _too_big(label, url, limit)
                    parts.append(block)
                return b"".join(parts)
        except _network_errors() as error:
            deadline.check()
            last_error = error
            ctx.log.info("request failed; retrying", url=url, attempt=attempt + 1,
                            of=ATTEMPTS, error=str(error))
            deadline.sleep(BACKOFF * (2 ** attempt))
    raise InputError(f"{label}: could not fetch {url} after {ATTEMPTS} attempts "
                     f"({last_error}); check the mirror URL and the network")


def _open_local(path: Path, label: str, limit: int) -> AbstractContextManager[BinaryIO]:
    """``path`` opened for reading, refused unless a regular file of at most ``limit``
    bytes (a FIFO as a local mirror file would block forever)."""
    return open_regular(path, f"mirror file ({label})", limit, error=InputError,
                        missing=NotFoundError)


def _copy_local(url: str, part: Path, label: str, limit: int) -> None:
    source = local_path(url)
    with _open_local(source, label, limit) as src, open(part, "wb") as out:
        for block in iter(lambda: src.read(CHUNK), b""):
            _write(out, block, part)


def _write(out: BinaryIO, block: bytes, part: Path) -> None:
    """``out.write(block)``; a full disk is an :class:`InputError` naming the file."""
    try:
        out.write(block)
    except OSError as error:
        raise InputError(f"{part}: cannot write ({error.strerror or error}); free space "
                         "in the cache (or set RVFORGE_CACHE_DIR)") from None


def _download(url: str, part: Path, ctx: BuildContext, size: int | None, label: str,
              deadline: _Deadline) -> None:
    """Stream ``url`` to ``part``, resuming after dropped connections; at most ``size``
    bytes (or :data:`FILE_CAP`), within ``deadline``."""
    limit = size if size is not None else FILE_CAP
    part.unlink(missing_ok=True)
    last_error: BaseException | None = None
    with ctx.progress.task(f"download {label}", total=size, bytes=True) as task:
        for attempt in range(ATTEMPTS):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with deadline.watch(), _get(url, label, ctx, deadline, headers) as response:
                    if have and response.status_code != 206:
                        have = 0  # the server ignored Range: start over
                        task.done = 0
                    length = _refuse_length(response, url, label, limit - have)
                    if size is None and length is not None:
                        task.set_total(have + length)
                    with open(part, "ab" if have else "wb") as out:
                        for block in response.iter_content(STREAM_CHUNK):
                            have += len(block)
                            if have > limit:
                                raise _too_big(label, url, limit)
                            _write(out, block, part)
                            task.advance(len(block))
                return
            except _network_errors() as error:
                deadline.check()
                last_error = error
                ctx.log.info("download interrupted; retrying", file=label,
                                attempt=attempt + 1, of=ATTEMPTS, error=str(error),
                                resume_from=part.stat().st_size if part.exists() else 0)
                deadline.sleep(BACKOFF * (2 ** attempt))
    raise InputError(f"{label}: download failed after {ATTEMPTS} attempts ({last_error}); "
                     "check the mirror URL and the network")


class _Retryable(Exception):
    """A server error worth retrying (5xx, 429)."""


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a dropped or stalled connection raises (requests is imported on first use)."""
    import requests

    return (requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError, _Retryable)


class _Deadline:
    """The overall deadline of one fetch, from its start: :meth:`watch` shuts down the
    socket of a request still connecting, waiting for or receiving its headers (a drip, an
    endless ``100 Continue``) or its body when the deadline passes (a server dripping a byte
    every few seconds never trips a per-read timeout); :meth:`check` turns that into an
    error."""

    def __init__(self, url: str, label: str, size: int | None) -> None:
        self.url = url
        self.label = label
        self.seconds = deadline_seconds(size)
        self.end = time.monotonic() + self.seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if self.expired or self.remaining() <= 0:
            raise LimitExceededError(
                f"{_where(self.label, self.url)} took longer than the {self.seconds:g} s deadline "
                f"of one download; the mirror is too slow or stalls (set ${DEADLINE_ENV} "
                "to allow more)")

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self.remaining())))

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Run one request (connect, headers, body) under the deadline."""
        from rvforge.net.http import watching

        self.check()
        timer = threading.Timer(min(self.remaining(), MAX_DEADLINE), self._cut)
        timer.daemon = True
        timer.start()
        try:
            with watching(self._add):
                yield
        except BaseException:
            self.check()
            raise
        finally:
            timer.cancel()
            with self._lock:
                self._sockets.clear()
        self.check()  # a connection cut at the deadline may have looked like a short body

    def _add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            late = self.expired
        if late:
            self._shutdown(sock)

    def _cut(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv()
        except OSError:
            pass  # already closed


@contextmanager
def _get(url: str, label: str, ctx: BuildContext, deadline: _Deadline,
         headers: dict[str, str] | None = None) -> Iterator[requests.Response]:
    """``GET url`` (streamed), following at most :data:`MAX_REDIRECTS` redirects to
    ``http(s)`` URLs only; the response's status is checked."""
    import requests

    current = url
    for _ in range(MAX_REDIRECTS + 1):
        deadline.check()
        left = max(0.1, deadline.remaining())
        timeout = (min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left))
        try:
            response = ctx.http.get(current, headers=headers or {}, stream=True,
                                    timeout=timeout, allow_redirects=False)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, ValueError) as error:
            raise InputError(f"{label}: cannot fetch {current!r} ({error}); check the "
                             "mirror URL") from None
        if response.status_code in _REDIRECTS:
            location = response.headers.get("Location", "")
            response.close()
            current = _redirect_target(current, location, label)
            continue
        try:
            _raise_for_status(response, current, label)
            yield response
        finally:
            response.close()
        return
    raise InputError(f"{label}: more than {MAX_REDIRECTS} redirects from {url}; the mirror "
                     "is misconfigured")


def _redirect_target(url: str, location: str, label: str) -> str:
    """The absolute URL a redirect from ``url`` to ``location`` names, if it is
    ``http(s)`` with a host; else an :class:`InputError` naming both."""
    try:
        target = urljoin(url, location)
        parsed = urlparse(target)
        ok = parsed.scheme in ("http", "https") and bool(parsed.hostname) and not any(
            ord(c) < 32 for c in target)
    except ValueError:
        ok = False
    if not location or not ok:
        raise InputError(f"{label}: the mirror redirected {url} to {location!r}, which is "
                         "not an http(s) URL; refusing to follow it")
    return target


def _refuse_length(response: requests.Response, url: str, label: str,
                   limit: int) -> int | None:
    """The response's ``Content-Length`` (``None`` without one); a value that is not a
    number, or exceeds ``limit`` bytes, is refused."""
    text = response.headers.get("Content-Length")
    if text is None:
        return None
    values = {v.strip() for v in text.split(",")}  # "N, N": a header sent twice, merged
    if len(values) != 1 or not is_decimal(value := values.pop()):
        raise InputError(f"{_where(label, url)}: the mirror's Content-Length {text[:40]!r} is "
                         "not a number of bytes; refusing the response")
    if int(value) > limit:
        raise _too_big(label, url, limit)
    return int(value)


def _too_big(label: str, url: str, limit: int) -> LimitExceededError:
    return LimitExceededError(f"{_where(label, url)} is larger than the {limit} bytes allowed "
                              "(the size its index states, or rvforge's cap); the mirror "
                              "serves the wrong file")


def _raise_for_status(response: requests.Response, url: str, label: str) -> None:
    code = response.status_code
    if code in (200, 206):
        return
    if code == 404 or code == 410:
        raise NotFoundError(f"{label}: not found on the mirror ({url}, HTTP {code})")
    if code == 429 or code >= 500:
        raise _Retryable(f"HTTP {code} from {url}")
    raise InputError(f"{label}: the mirror refused {url} (HTTP {code})")


def _where(label: str, url: str) -> str:
    """``label: url`` for messages, or ``label`` alone when it already names the URL."""
    return label if url in label else f"{label}: {url}"


def _scheme(url: str) -> str:
    """``url``'s scheme, lower case ('' for a local path or a URL that does not parse)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isalnum() else ""
