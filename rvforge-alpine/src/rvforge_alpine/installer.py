"""``--package NAME``: install apk packages into a tree without running foreign code.

What ``apk add --root TREE`` does, done on the Tree: read the tree's database and trusted
keys, load and verify the branch's indexes, resolve, download the packages in parallel
(cached by checksum under ``$XDG_CACHE_HOME/rvforge/alpine/packages``), verify each, extract
the data with the owners and modes the tar headers record, and update
``lib/apk/db/installed``, ``etc/apk/world``, ``scripts.tar`` and ``triggers``.
"""

from __future__ import annotations

import base64
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import BuildContext, InputError, Progress, Tree
from rvforge.net.download import fetch

from rvforge_alpine import install_scripts, repositories, signatures
from rvforge_alpine.apkfile import ApkFile, extract, open_apk
from rvforge_alpine.installed_db import INSTALLED, WORLD, InstalledDb, parse_world, render_world
from rvforge_alpine.pkginfo import Dependency, PackageInfo
from rvforge_alpine.resolver import Resolver


@dataclass(frozen=True)
class InstallRequest:
    """What to install and from where.

    :param packages: atoms as the user typed them (``curl``, ``so:libz.so.1``, ``musl>=1.2``).
    :param mirror: the mirror URL or path.
    :param branch: the repositories' branch (``v3.20``, ``edge``).
    :param jobs: parallel downloads.
    :param scripts: ``first-boot`` or ``skip`` (see :mod:`rvforge_alpine.install_scripts`).
    """

    packages: list[str]
    mirror: str
    branch: str
    jobs: int = 4
    scripts: str = "first-boot"


def install(tree: Tree, request: InstallRequest, ctx: BuildContext) -> list[PackageInfo]:
    """Install ``request.packages`` (and what they need) into ``tree``; return what was
    added, in install order."""
    if request.scripts not in install_scripts.POLICIES:
        raise InputError(f"--scripts {request.scripts!r}: expected one of "
                         f"{', '.join(install_scripts.POLICIES)}")
    atoms = [Dependency.parse(text, where="--package") for text in request.packages]
    keys = signatures.trusted_keys(tree)
    if not keys:
        raise InputError(f"the tree has no keys in {signatures.KEYS_DIR}; apk packages "
                         "cannot be verified (is this an Alpine root filesystem?)")
    db = InstalledDb.parse(tree.read_text(INSTALLED)) if tree.is_file(INSTALLED) \
        else InstalledDb()
    available = repositories.load_indexes(request.mirror, request.branch, keys, ctx)
    plan = Resolver(available, [p.info for p in db.packages]).resolve(atoms)
    for package in plan.install:
        ctx.log.info("will install", package=package.label, why=plan.reasons[package.name])
    files = _download(plan.install, request, keys, ctx)
    owners = db.owners()
    for apk in files:
        label = apk.info.label
        added = extract(apk, tree, ctx.scratch("alpine", "packages", label), label=label,
                        owners=owners, replaces=set(apk.info.replaces))
        record = db.add(apk.info, added)
        owners.update({path: apk.info.name for path in record.paths()
                       if not tree.is_dir(path)})
    _write_database(tree, db, request.packages)
    install_scripts.record(tree, files, request.scripts, ctx)
    ctx.log.info("packages installed", count=len(files),
                 packages=" ".join(p.label for p in plan.install) or "none")
    return plan.install


def _download(packages: list[PackageInfo], request: InstallRequest,
              keys: dict[str, rsa.RSAPublicKey], ctx: BuildContext) -> list[ApkFile]:
    """Fetch and verify every package, ``request.jobs`` at a time, with one progress bar."""
    if not packages:
        return []
    quiet = dataclasses.replace(ctx, progress=Progress(enabled=False))
    total = sum(p.size for p in packages) or None
    with ctx.progress.task(f"download {len(packages)} packages", total=total,
                           bytes=True) as task:
        def one(package: PackageInfo) -> ApkFile:
            apk = _fetch_verified(package, request, keys, quiet)
            task.advance(package.size)
            return apk

        with ThreadPoolExecutor(max_workers=max(1, request.jobs)) as pool:
            return list(pool.map(one, packages))


def _fetch_verified(package: PackageInfo, request: InstallRequest,
                    keys: dict[str, rsa.RSAPublicKey], ctx: BuildContext) -> ApkFile:
    """The verified ``.apk`` in the cache; a cached copy that fails verification is
    discarded and fetched once more; a download that fails it is removed."""
    url = repositories.package_url(request.mirror, request.branch, package)
    dest = _cache_path(package, ctx)
    label = f"{package.name}-{package.version}.apk"
    was_cached = dest.is_file()
    fetch(url, dest, ctx, size=package.size or None, label=label)
    try:
        return _open(dest, package, keys, label)
    except InputError as error:
        if not was_cached:
            raise
        ctx.log.warning("corrupt cached package; fetching it again", file=label,
                        error=str(error))
    fetch(url, dest, ctx, size=package.size or None, label=label)
    return _open(dest, package, keys, label)


def _open(path: Path, package: PackageInfo, keys: dict[str, rsa.RSAPublicKey],
          label: str) -> ApkFile:
    """:func:`open_apk`, removing ``path`` when it fails verification."""
    try:
        return open_apk(path, keys, expected_checksum=package.checksum, label=label)
    except InputError:
        path.unlink(missing_ok=True)
        raise


def _cache_path(package: PackageInfo, ctx: BuildContext) -> Path:
    """``packages/<sha1 hex of C:>-<name>-<version>.apk``: one file per exact package."""
    try:
        digest = base64.b64decode(package.checksum.removeprefix("Q1"), validate=True).hex()
    except ValueError:
        raise InputError(f"{package.label}: malformed index checksum "
                         f"{package.checksum!r}") from None
    if not package.checksum.startswith("Q1") or len(digest) != 40:
        raise InputError(f"{package.label}: the index gives no SHA-1 checksum (C:); "
                         "the package cannot be verified")
    return ctx.cache("alpine", "packages") / f"{digest}-{package.name}-{package.version}.apk"


def _write_database(tree: Tree, db: InstalledDb, requested: list[str]) -> None:
    installed = tree.get(INSTALLED)
    mode, uid, gid = (installed.mode, installed.uid, installed.gid) if installed \
        else (0o644, 0, 0)
    tree.add_file(INSTALLED, db.render().encode(), mode=mode, uid=uid, gid=gid)
    world = parse_world(tree.read_text(WORLD)) if tree.is_file(WORLD) else []
    current = tree.get(WORLD)
    mode, uid, gid = (current.mode, current.uid, current.gid) if current else (0o644, 0, 0)
    tree.add_file(WORLD, render_world(world + requested).encode(), mode=mode, uid=uid,
                  gid=gid)
