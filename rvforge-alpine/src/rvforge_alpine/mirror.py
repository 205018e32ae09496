"""Where files come from: the mirror URL and the small files read from it.

Big files (images, packages) go through :func:`rvforge.net.download.fetch`, which verifies them
against known digests. Small metadata whose content changes on the mirror
(``latest-releases.yaml``, ``APKINDEX.tar.gz``, ``.asc`` signatures, ``.sha256`` files) is
fetched fresh on every online build and copied to the cache, so ``--offline`` can reuse the
last copy; it is verified by what reads it (a signature or a digest), never trusted alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from rvforge import BuildContext, InputError
from rvforge.net.download import NotFoundError, check_mirror_url, fetch_bytes
from rvforge.userfiles import expand_user

DEFAULT_MIRROR = "https://dl-cdn.alpinelinux.org/alpine"
MIRROR_ENV = "RVFORGE_ALPINE_MIRROR"


def mirror_url(option: str | None) -> str:
    """``--mirror``, else ``$RVFORGE_ALPINE_MIRROR``, else Alpine's CDN; a plain local path
    becomes absolute so messages and ``file://`` handling agree."""
    url = option or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    check_mirror_url(url, option="--mirror" if option else f"${MIRROR_ENV}")
    if "://" not in url:
        url = str(expand_user(url, "--mirror").resolve())
    return url.rstrip("/")


def metadata(url: str, cache_file: Path, ctx: BuildContext, *, label: str) -> bytes:
    """The content of a small, changing mirror file.

    Online: fetched from ``url``; the caller checks it and then keeps it with :func:`store`.
    Offline: the copy in ``cache_file``.
    """
    if ctx.offline:
        if cache_file.is_file():
            return cache_file.read_bytes()
        raise InputError(f"{label}: not in the cache ({cache_file}) and --offline forbids "
                         "downloading it; run once without --offline")
    return fetch_bytes(url, ctx, label=label)


def optional_metadata(url: str, cache_file: Path, ctx: BuildContext, *, label: str
                      ) -> bytes | None:
    """As :func:`metadata`, but a file the mirror (or the offline cache) lacks is ``None``."""
    if ctx.offline and not cache_file.is_file():
        return None
    try:
        return metadata(url, cache_file, ctx, label=label)
    except NotFoundError:
        return None
