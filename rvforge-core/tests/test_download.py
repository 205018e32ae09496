"""rvforge.net.download against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rvforge import ChecksumMismatchError, InputError
from rvforge.context import BuildContext
from rvforge.net.download import NotFoundError, fetch, fetch_bytes, join_url
from rvforge.testing import Fault, LoopbackMirror, loopback_mirror

NAME = "alpine-minirootfs-3.20.3-riscv64.tar.gz"


@pytest.fixture
def served(alpine_tarball: Path) -> Iterator[LoopbackMirror]:
    with loopback_mirror(alpine_tarball.parent) as mirror:
        yield mirror


@pytest.fixture
def digest(alpine_tarball: Path) -> dict[str, str]:
    return {"sha256": hashlib.sha256(alpine_tarball.read_bytes()).hexdigest()}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_is_verified_and_cached(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path) -> None:
    dest = tmp_path / "cache" / NAME
    fetch(join_url(served.url, NAME), dest, rvforge_context, digests=digest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest["sha256"]
    served.requests.clear()
    fetch(join_url(served.url, NAME), dest, rvforge_context, digests=digest)
    assert served.requests == []  # the cache answered


def test_dropped_connection_resumes_with_range(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rvforge.net.download.BACKOFF", 0.01)
    served.faults[f"/{NAME}"] = Fault(drop_after=1_000_000, times=1)
    dest = rvforge_context.cache_dir / "out" / NAME
    fetch(join_url(served.url, NAME), dest, rvforge_context, digests=digest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest["sha256"]
    (first, no_range), (second, resumed) = served.requests
    assert first == second == f"/{NAME}" and no_range is None
    assert resumed is not None and resumed.startswith("bytes=")
    assert 900_000 < int(resumed[6:-1]) <= 1_000_000


def test_server_errors_are_retried(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rvforge.net.download.BACKOFF", 0.01)
    served.faults[f"/{NAME}"] = Fault(status=503, times=2)
    fetch(join_url(served.url, NAME),
          rvforge_context.cache_dir / NAME, rvforge_context, digests=digest)
    assert len(served.requests) == 3


def test_checksum_mismatch_keeps_nothing(
        served: LoopbackMirror, rvforge_context: BuildContext, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / NAME
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(join_url(served.url, NAME), dest, rvforge_context, digests={"sha256": "ab" * 32})
    assert f"{NAME}: sha256 mismatch: expected {'ab' * 32}, got 290d402a" in str(info.value)
    assert leftovers(dest.parent) == []


def test_not_found_is_not_retried(
        served: LoopbackMirror, rvforge_context: BuildContext, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found on the mirror"):
        fetch(join_url(served.url, "v3.1/nothing.tar.gz"),
              rvforge_context.cache_dir / "x", rvforge_context)
    assert len(served.requests) == 1


def test_corrupt_cache_entry_is_fetched_again(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path) -> None:
    dest = rvforge_context.cache(NAME.split(".")[0]) / NAME
    dest.write_bytes(b"garbage")
    fetch(join_url(served.url, NAME), dest, rvforge_context, digests=digest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest["sha256"]


def test_offline_uses_the_cache_or_says_what_is_missing(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path) -> None:
    rvforge_context.offline = True
    with pytest.raises(InputError, match=r"not in the cache .* --offline"):
        fetch(join_url(served.url, NAME),
              rvforge_context.cache_dir / NAME, rvforge_context, digests=digest)
    assert served.requests == []
    rvforge_context.offline = False
    fetch(join_url(served.url, NAME),
          rvforge_context.cache_dir / NAME, rvforge_context, digests=digest)
    rvforge_context.offline = True
    assert fetch(join_url(served.url, NAME), rvforge_context.cache_dir / NAME, rvforge_context,
                 digests=digest).exists()


def test_local_paths_and_file_urls(
        alpine_tarball: Path, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path) -> None:
    cache = rvforge_context.cache_dir
    fetch(str(alpine_tarball), cache / "a", rvforge_context, digests=digest)
    fetch(alpine_tarball.as_uri(), cache / "b", rvforge_context, digests=digest)
    assert (cache / "a").read_bytes() == (cache / "b").read_bytes()
    assert fetch_bytes(f"{alpine_tarball}.sha256", rvforge_context).startswith(b"290d402a")
    with pytest.raises(NotFoundError):
        fetch_bytes(str(tmp_path / "missing"), rvforge_context)


def test_wrong_size_is_refused(
        served: LoopbackMirror, rvforge_context: BuildContext, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="larger than the 12 bytes allowed"):
        fetch(join_url(served.url, NAME),
              rvforge_context.cache_dir / NAME, rvforge_context, size=12)
    assert leftovers(rvforge_context.cache_dir) == []


def test_one_build_downloads_over_one_kept_alive_connection(
        served: LoopbackMirror, digest: dict[str, str], rvforge_context: BuildContext,
        tmp_path: Path) -> None:
    quiet = dataclasses.replace(rvforge_context)  # as providers copy it for parallel work
    assert quiet.http is rvforge_context.http
    for n, ctx in enumerate([rvforge_context, quiet, rvforge_context]):
        fetch(join_url(served.url, NAME),
              rvforge_context.cache_dir / f"{n}.tar.gz", ctx, digests=digest)
    fetch_bytes(join_url(served.url, NAME), quiet)
    assert len(served.requests) == 4 and len(served.connections) == 1
    rvforge_context.close()  # closes the pool; a later download opens a new connection
    fetch_bytes(join_url(served.url, NAME), rvforge_context)
    assert len(served.connections) == 2
