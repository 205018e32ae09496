"""Verified, resumable, cached downloads for providers and kernel sources.

:func:`fetch` makes sure a cache path holds a URL's content with the expected digests:
a cached copy is re-verified before use (and fetched again when corrupt); a download is
streamed to a temporary name next to the destination, resumed with an HTTP ``Range``
request after a dropped connection, retried with backoff on network and server errors,
verified, and only then renamed into place. A checksum mismatch leaves nothing behind.

URLs may be ``http(s)://``, ``file://`` or plain local paths (a local mirror).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from rvforge.context import BuildContext
from rvforge.errors import ChecksumMismatchError, InputError

if TYPE_CHECKING:
    import requests

__all__ = ["NotFoundError", "fetch", "fetch_bytes", "file_digests", "is_remote", "join_url",
           "local_path", "verify", "write_atomic"]

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
ATTEMPTS = 5
BACKOFF = 0.5
"""Seconds before the first retry; doubled for each further one."""
CHUNK = 1 << 20
STREAM_CHUNK = 1 << 16
"""Network reads: small enough that little is lost (and refetched) when a connection drops."""


class NotFoundError(InputError):
    """The server (or local mirror) has no such file."""


def join_url(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended by ``/`` (works for URLs and local paths)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def is_remote(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https")


def local_path(url: str) -> Path:
    """The local file a ``file://`` URL or plain path names."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(url)


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name next to it (parents created):
    readers and later runs see the whole file or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        part.write_bytes(data)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def fetch(url: str, dest: Path, ctx: BuildContext, *, digests: Mapping[str, str] | None = None,
          size: int | None = None, label: str | None = None) -> Path:
    """Make ``dest`` hold ``url``'s content, verified against ``digests``; return ``dest``.

    :param digests: algorithm → expected hex digest; all must match.
    :param size: expected size in bytes, if known (for progress and a early check).
    :param label: names the file in messages (default: its file name).
    """
    digests = dict(digests or {})
    label = label or dest.name
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
        raise InputError(f"{label}: not in the cache ({dest}) and --offline forbids "
                         "downloading it; run once without --offline")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        if is_remote(url):
            _download(url, part, ctx, size, label)
        else:
            _copy_local(url, part, label)
        if size is not None and part.stat().st_size != size:
            raise InputError(f"{label}: got {part.stat().st_size} bytes, expected {size}; "
                             "the mirror's file is truncated or changed")
        verify(part, digests, label)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def fetch_bytes(url: str, ctx: BuildContext, *, label: str | None = None) -> bytes:
    """Fetch a small file (an index, a checksum file) into memory, with retries."""
    label = label or url
    if ctx.offline:
        raise InputError(f"{label}: needs the network and --offline was given")
    if not is_remote(url):
        path = local_path(url)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{label}: not found ({path})") from None
        except OSError as error:
            raise InputError(f"{label}: cannot read {path} ({error.strerror})") from None
    response = _request(url, label, ctx, stream=False)
    return response.content


def _copy_local(url: str, part: Path, label: str) -> None:
    source = local_path(url)
    try:
        with open(source, "rb") as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except FileNotFoundError:
        raise NotFoundError(f"{label}: not found ({source})") from None
    except IsADirectoryError:
        raise InputError(f"{label}: {source} is a directory") from None
    except PermissionError:
        raise InputError(f"{label}: cannot read {source} (permission denied)") from None


def _download(url: str, part: Path, ctx: BuildContext, size: int | None, label: str) -> None:
    """Stream ``url`` to ``part``, resuming after dropped connections."""
    import requests

    part.unlink(missing_ok=True)
    last_error: Exception | None = None
    with ctx.progress.task(f"download {label}", total=size, bytes=True) as task:
        for attempt in range(ATTEMPTS):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with ctx.http.get(url, headers=headers, stream=True,
                                  timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
                    _raise_for_status(response, url, label)
                    if have and response.status_code != 206:
                        have = 0  # the server ignored Range: start over
                        task.done = 0
                    if size is None and "Content-Length" in response.headers:
                        task.set_total(have + int(response.headers["Content-Length"]))
                    with open(part, "ab" if have else "wb") as out:
                        for block in response.iter_content(STREAM_CHUNK):
                            out.write(block)
                            task.advance(len(block))
                return
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError, _Retryable) as error:
                last_error = error
                delay = BACKOFF * (2 ** attempt)
                ctx.log.warning("download interrupted; retrying", file=label,
                                attempt=attempt + 1, of=ATTEMPTS, error=str(error),
                                resume_from=part.stat().st_size if part.exists() else 0)
                time.sleep(delay)
    raise InputError(f"{label}: download failed after {ATTEMPTS} attempts ({last_error}); "
                     "check the mirror URL and the network")


class _Retryable(Exception):
    """A server error worth retrying (5xx, 429)."""


def _raise_for_status(response: requests.Response, url: str, label: str) -> None:
    code = response.status_code
    if code in (200, 206):
        return
    if code == 404 or code == 410:
        raise NotFoundError(f"{label}: not found on the mirror ({url}, HTTP {code})")
    if code == 429 or code >= 500:
        raise _Retryable(f"HTTP {code} from {url}")
    raise InputError(f"{label}: the mirror refused {url} (HTTP {code})")


def _request(url: str, label: str, ctx: BuildContext, *, stream: bool) -> requests.Response:
    import requests

    last_error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            response = ctx.http.get(url, stream=stream,
                                    timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            _raise_for_status(response, url, label)
            return response
        except (requests.ConnectionError, requests.Timeout, _Retryable) as error:
            last_error = error
            ctx.log.warning("request failed; retrying", url=url, attempt=attempt + 1,
                            of=ATTEMPTS, error=str(error))
            time.sleep(BACKOFF * (2 ** attempt))
    raise InputError(f"{label}: could not fetch {url} after {ATTEMPTS} attempts "
                     f"({last_error}); check the mirror URL and the network")
