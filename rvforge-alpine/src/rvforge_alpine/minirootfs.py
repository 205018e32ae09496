"""Getting a verified minirootfs tarball into the cache.

:func:`obtain` resolves a :class:`~rvforge_alpine.releases.ReleaseRequest` on the mirror,
downloads the image into ``$XDG_CACHE_HOME/rvforge/alpine/<branch>/releases/riscv64/``
through :func:`rvforge.net.download.fetch` (checksums always verified; a corrupt cached copy is
fetched again; nothing is kept on a mismatch), then checks the release's OpenPGP signature
when the mirror has one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rvforge import BuildContext, InputError
from rvforge.net.download import fetch, join_url, verify, write_atomic
from rvforge.userfiles import read_regular

from rvforge_alpine import mirror as mirrors
from rvforge_alpine import openpgp, releases
from rvforge_alpine.releases import ReleaseFile, ReleaseRequest

KEYRING_CAP = 64 << 20
"""Bytes of a keyring read at most (Alpine's release key is ~3 kB)."""


@dataclass(frozen=True)
class Resolved:
    """A resolved release and the mirror metadata that described it, kept in the cache
    (for ``--offline``) only once the image it describes has been verified."""

    release: ReleaseFile
    metadata: tuple[tuple[Path, bytes], ...] = ()


@dataclass(frozen=True)
class SignaturePolicy:
    """How to treat release signatures.

    :param verify: check the ``.asc`` (``--no-verify-signature`` turns it off).
    :param keyring: a file of trusted OpenPGP keys instead of Alpine's release key.
    """

    verify: bool = True
    keyring: Path | None = None

    def keys(self) -> tuple[bytes, str]:
        """The trusted keys and how to name them in messages."""
        if self.keyring is None:
            return openpgp.release_key(), (f"Alpine's release key "
                                           f"({openpgp.RELEASE_FINGERPRINT})")
        keys = read_regular(self.keyring, "keyring (--keyring)", KEYRING_CAP,
                            hint="pass --keyring a file of OpenPGP keys")
        return keys, f"--keyring {self.keyring}"


def resolve(request: ReleaseRequest, mirror: str, ctx: BuildContext) -> Resolved:
    """Work out the file, version and digests ``request`` means on ``mirror``."""
    directory = releases.releases_dir(request.branch)
    cache = ctx.cache("alpine", *directory.split("/"))
    if request.version is None:
        name = releases.LATEST_RELEASES
        url = join_url(mirror, directory, name)
        label = f"{request.branch}/{name}"
        data = mirrors.metadata(url, cache / name, ctx, label=label)
        resolved = releases.from_latest_releases(data.decode("utf-8", "replace"),
                                                 request.branch, label=f"{label} ({url})")
        ctx.log.info("resolved release", release=request.branch, version=resolved.version,
                     file=resolved.file)
        return Resolved(resolved, ((cache / name, data),))
    file = releases.minirootfs_name(request.version)
    digests: dict[str, str] = {}
    kept: list[tuple[Path, bytes]] = []
    for algorithm in ("sha256", "sha512"):
        name = f"{file}.{algorithm}"
        checksums = mirrors.optional_metadata(join_url(mirror, directory, name),
                                              cache / name, ctx, label=name)
        if checksums is None:
            continue
        digests[algorithm] = releases.parse_checksum_file(
            checksums.decode("utf-8", "replace"), file, algorithm, label=name)
        kept.append((cache / name, checksums))
    if not digests:
        where = "in the cache" if ctx.offline else f"on {mirror}"
        raise InputError(
            f"{file}: no .sha256 or .sha512 {where}; Alpine {request.version} for "
            f"{releases.ARCH} does not exist there, or the mirror is incomplete "
            "(check --release and --mirror)"
        )
    return Resolved(ReleaseFile(request.branch, request.version, file, digests), tuple(kept))


def obtain(resolved: Resolved, mirror: str, policy: SignaturePolicy,
           ctx: BuildContext) -> Path:
    """The verified image in the cache (downloaded if needed); signature checked; the
    metadata that resolved it kept for ``--offline``."""
    release = resolved.release
    directory = releases.releases_dir(release.branch)
    cache = ctx.cache("alpine", *directory.split("/"))
    path = fetch(join_url(mirror, directory, release.file), cache / release.file, ctx,
                 digests=release.digests, size=release.size, label=release.file)
    check_signature(path, join_url(mirror, directory, f"{release.file}.asc"), policy, ctx,
                    label=release.file)
    for cache_file, data in resolved.metadata:
        write_atomic(cache_file, data, within=ctx.cache_dir)
    return path


def check_signature(path: Path, url: str | None, policy: SignaturePolicy,
                    ctx: BuildContext, *, label: str) -> None:
    """Verify ``path``'s detached signature (from ``url``, or ``path.asc`` when ``url`` is
    ``None``). A bad signature removes ``path`` (it must not be reused from the cache); a
    missing one is a warning (an error with ``--strict``)."""
    if not policy.verify:
        ctx.log.warning("release signature NOT checked (--no-verify-signature)", file=label)
        return
    asc_cache = path.with_name(f"{path.name}.asc")
    if url is None:
        signature = read_regular(asc_cache, "signature", KEYRING_CAP, error=InputError
                                 ) if asc_cache.is_file() else None
    else:
        signature = mirrors.optional_metadata(url, asc_cache, ctx, label=f"{label}.asc")
    if signature is None:
        message = (f"{label}: the mirror has no OpenPGP signature ({label}.asc); only the "
                   "checksum was verified")
        if ctx.strict:
            raise InputError(message + " and --strict requires a signature")
        ctx.log.warning(message)
        return
    keyring, keyring_label = policy.keys()
    workdir = ctx.scratch("alpine-gpg", path.name)
    try:
        fingerprint = openpgp.verify_detached(path, signature, keyring, workdir, label=label,
                                              keyring_label=keyring_label)
    except InputError:
        if url is not None:
            path.unlink(missing_ok=True)
            asc_cache.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if url is not None:
        write_atomic(asc_cache, signature, within=ctx.cache_dir)
    ctx.log.info("release signature verified", file=label, key=fingerprint)


def check_source(source: Path, sha256: str | None, policy: SignaturePolicy,
                 ctx: BuildContext) -> None:
    """Check a user-supplied ``--source`` tarball: its ``--sha256`` if given, and a
    ``SOURCE.asc`` next to it if there is one."""
    if not source.is_file():
        raise InputError(f"--source {source}: no such file")
    if sha256:
        verify(source, {"sha256": sha256.lower()}, str(source))
        ctx.log.info("source checksum verified", source=str(source))
    else:
        ctx.log.info("no --sha256 given; the source tarball is used as it is",
                     source=str(source))
    if policy.verify and source.with_name(f"{source.name}.asc").is_file():
        check_signature(source, None, policy, ctx, label=str(source))
