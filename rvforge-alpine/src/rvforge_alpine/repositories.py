"""Alpine package repositories on a mirror: their signed indexes and package URLs.

``<mirror>/<branch>/<repo>/riscv64/APKINDEX.tar.gz`` for ``main`` and ``community``; each
index is verified against the tree's ``/etc/apk/keys`` before it is used or cached.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from rvforge import BuildContext, InputError
from rvforge.net.download import join_url, write_atomic

from rvforge_alpine import apkindex
from rvforge_alpine import mirror as mirrors
from rvforge_alpine.pkginfo import PackageInfo
from rvforge_alpine.releases import ARCH

REPOSITORIES = ("main", "community")
INDEX = "APKINDEX.tar.gz"


def repository_dir(branch: str, repository: str) -> str:
    return f"{branch}/{repository}/{ARCH}"


def load_indexes(mirror: str, branch: str, keys: dict[str, rsa.RSAPublicKey],
                 ctx: BuildContext) -> list[PackageInfo]:
    """Every package of the branch's repositories, verified; a repository the mirror lacks
    is skipped with a warning (an internal mirror may carry only ``main``)."""
    packages: list[PackageInfo] = []
    found = []
    with ctx.progress.task(f"package indexes ({branch})", total=len(REPOSITORIES)) as task:
        for repository in REPOSITORIES:
            directory = repository_dir(branch, repository)
            url = join_url(mirror, directory, INDEX)
            label = f"{directory}/{INDEX} ({url})"
            cache_file = ctx.cache("alpine", *directory.split("/")) / INDEX
            data = mirrors.optional_metadata(url, cache_file, ctx, label=label)
            task.advance(1)
            if data is None:
                ctx.log.warning("repository index missing; skipping the repository",
                                index=label, offline=ctx.offline)
                continue
            found.append(repository)
            packages += apkindex.read_index(data, keys, label=label, repository=repository)
            write_atomic(cache_file, data, within=ctx.cache_dir)
    if not found:
        where = "in the cache (run once without --offline)" if ctx.offline else f"on {mirror}"
        raise InputError(f"{branch}: no package index ({', '.join(REPOSITORIES)}) {where}; "
                         "check --mirror and --release")
    ctx.log.info("package indexes loaded", branch=branch, repositories=found,
                 packages=len(packages))
    return packages


def package_url(mirror: str, branch: str, package: PackageInfo) -> str:
    return join_url(mirror, repository_dir(branch, package.repository),
                    f"{package.name}-{package.version}.apk")
