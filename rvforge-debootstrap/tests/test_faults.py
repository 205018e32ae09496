"""Faults, on a loopback HTTP mirror holding real files from the Debian mirror: a tampered
``Packages.xz``, a tampered ``.deb``, a tampered ``InRelease``, and connections dropped
mid-file. Each either recovers or fails with a one-line error, leaving nothing partial."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import rvforge.net.download
from rvforge import BuildContext, ChecksumMismatchError, InputError

from rvforge_debootstrap.archive import DebianArchive
from rvforge_debootstrap.release import SignatureError

pytestmark = pytest.mark.network


@dataclass
class Mirror:
    """A directory served over loopback HTTP; ``drops[path] = n`` makes the next ``n``
    requests of ``path`` stop halfway through the body."""

    root: Path
    url: str = ""
    drops: dict[str, int] = field(default_factory=dict)
    ranges: list[str] = field(default_factory=list)

    def put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def handler_for(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rel = self.path.lstrip("/")
            path = mirror.root / rel
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            if (wanted := self.headers.get("Range", "")).startswith("bytes="):
                mirror.ranges.append(f"{rel} {wanted}")
                start = int(wanted[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mirror.drops.get(rel, 0) > 0:
                mirror.drops[rel] -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    served = Mirror(tmp_path / "mirror")
    served.root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty cache per test: these count what a faulty mirror leaves in it."""
    return tmp_path / "cache"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry at once instead of after 0.5 s, 1 s, 2 s... (the behaviour is the same)."""
    monkeypatch.setattr(rvforge.net.download, "BACKOFF", 0.01)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def copy_signed_index(real: DebianArchive, mirror: Mirror, *, tamper_index: bool) -> None:
    """Serve the real InRelease and Packages.xz (optionally with one byte flipped)."""
    release = real.release()
    mirror.put("dists/trixie/InRelease", (real.dists_cache / "InRelease").read_bytes())
    entry = release.file("main/binary-riscv64/Packages.xz", "test")
    data = bytearray(real.packages_file().read_bytes())
    if tamper_index:
        data[len(data) // 2] ^= 0x01
    mirror.put(f"dists/trixie/main/binary-riscv64/by-hash/SHA256/{entry.sha256}", bytes(data))
    mirror.put("dists/trixie/main/binary-riscv64/Packages.xz", bytes(data))


def test_tampered_packages_index_is_refused(debian_archive: DebianArchive, mirror: Mirror,
                                           ctx: BuildContext) -> None:
    copy_signed_index(debian_archive, mirror, tamper_index=True)
    archive = DebianArchive(ctx, mirror=mirror.url)
    with pytest.raises(ChecksumMismatchError, match="Packages.xz: sha256 mismatch") as caught:
        archive.index()
    assert caught.value.exit_code == 2
    assert sorted(p.name for p in leftovers(archive.dists_cache)) == ["InRelease",
                                                                   "InRelease.verified"]


def test_tampered_inrelease_fails_the_signature(debian_archive: DebianArchive,
                                               mirror: Mirror, ctx: BuildContext
                                               ) -> None:
    copy_signed_index(debian_archive, mirror, tamper_index=False)
    signed = (mirror.root / "dists/trixie/InRelease").read_bytes()
    mirror.put("dists/trixie/InRelease", signed.replace(b"Codename: trixie",
                                                        b"Codename: trixiE", 1))
    archive = DebianArchive(ctx, mirror=mirror.url)
    with pytest.raises(SignatureError, match="signature check failed"):
        archive.release()
    assert leftovers(ctx.cache_dir / "debian" / "dists") == []


def test_tampered_deb_is_refused_and_not_kept(debian_archive: DebianArchive, mirror: Mirror,
                                             ctx: BuildContext) -> None:
    pkg = debian_archive.package("busybox-static")
    data = bytearray(debian_archive.download(pkg).read_bytes())
    data[-100] ^= 0xFF
    mirror.put(pkg.filename, bytes(data))
    archive = DebianArchive(ctx, mirror=mirror.url)
    with pytest.raises(ChecksumMismatchError, match=re.escape(f"{pkg.deb_name}: sha256 mismatch")):
        archive.unpacked(pkg)
    assert leftovers(ctx.cache_dir) == []


def test_dropped_connection_resumes(debian_archive: DebianArchive, mirror: Mirror,
                                    ctx: BuildContext, fast_retries: None) -> None:
    pkg = debian_archive.package("busybox-static")
    mirror.put(pkg.filename, debian_archive.download(pkg).read_bytes())
    mirror.drops[pkg.filename] = 2
    archive = DebianArchive(ctx, mirror=mirror.url)
    unpacked = archive.unpacked(pkg)
    assert any(m.path == "/usr/bin/busybox" for m in unpacked.members)
    assert len(mirror.ranges) == 2 and all("bytes=" in r for r in mirror.ranges)
    assert [p.name for p in leftovers(archive.deb_cache)] == [pkg.deb_name]


def test_connection_that_always_drops_fails_cleanly(debian_archive: DebianArchive,
                                                    mirror: Mirror, ctx: BuildContext,
                                                    fast_retries: None) -> None:
    pkg = debian_archive.package("busybox-static")
    mirror.put(pkg.filename, debian_archive.download(pkg).read_bytes())
    mirror.drops[pkg.filename] = 100
    archive = DebianArchive(ctx, mirror=mirror.url)
    with pytest.raises(InputError, match="download failed after 5 attempts"):
        archive.unpacked(pkg)
    assert leftovers(ctx.cache_dir) == []
