"""The ``debootstrap`` provider: a Debian root filesystem for riscv64, without root and
without binfmt_misc.

Backends: ``python`` (default: resolve, download and unpack in Python, write the dpkg
database as ``dpkg --unpack`` leaves it), or the host's ``debootstrap`` / ``mmdebstrap``
(:mod:`rvforge_debootstrap.backends`). Configuration (running maintainer scripts) needs
riscv64 code to run; :mod:`rvforge_debootstrap.configure` picks the way.

Variants (package sets, as debootstrap and mmdebstrap define them):

``extract``
    ``Essential: yes`` packages and ``--package``s with their dependencies, unpacked and
    never configured (``--configure`` is ignored).
``essential``
    ``Essential: yes`` packages and their dependencies.
``minbase`` (default)
    also ``Priority: required`` and ``apt``.
``standard``
    also ``Priority: important`` and ``standard``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import TYPE_CHECKING

from rvforge import BuildContext, Provider, Tree
from rvforge.net.download import write_atomic

from rvforge_debootstrap.distribution import default_machine, distribution
from rvforge_debootstrap.options import ARCH, DebootstrapOptions

if TYPE_CHECKING:  # the archive's modules are imported on use: plugin loading stays light
    from rvforge_debootstrap.archive import DebianArchive
    from rvforge_debootstrap.dpkgdb import Unpacked
    from rvforge_debootstrap.index import Package, PackageIndex

RESOLVER_VERSION = 1
"""Part of the resolution cache key: bump when resolution rules change."""
MERGED_USR = {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib"}
"""Created before unpacking, as debootstrap does, so no package's ``./lib/`` directory
member can shadow the merged-/usr links base-files ships."""


class DebootstrapProvider(Provider[DebootstrapOptions]):
    name = "debootstrap"
    summary = ("Debian riscv64 root filesystem (trixie minbase by default), configured at "
               "build time (with binfmt as root, else in a VM); --variant, --package, "
               "--configure, --backend")
    Options = DebootstrapOptions
    cache_entries = {"debian/debs/*": "downloads", "debian/dists/*/*": "indexes",
                     "debian/unpacked-*/*": "unpacked"}

    def describe(self, options: DebootstrapOptions) -> str:
        return f"{options.distribution}-{options.release}-{options.variant}"

    def default_machine(self, options: DebootstrapOptions) -> str | None:
        return default_machine(distribution(options.distribution), options.release)

    def provide(self, options: DebootstrapOptions, ctx: BuildContext) -> Tree:
        from rvforge_debootstrap import backends, configure  # on use: plugin loading stays light
        from rvforge_debootstrap.archive import DebianArchive

        if options.backend != "python":
            return backends.provide_with_tool(options, ctx)
        mode = "none" if options.variant == "extract" else options.configure
        mode = configure.preflight(mode, ARCH, ctx)  # fail before downloading anything
        archive = DebianArchive(ctx, options.mirror, options.release, ARCH, options.keyring,
                                distribution(options.distribution))
        tree, unpacked = build_unpacked(archive, options.variant, options.package, ctx)
        configure.configure(tree, unpacked, mode, ARCH, ctx,
                            machine=self.default_machine(options))
        return tree


def root_packages(index: PackageIndex, variant: str, extra: list[str]) -> list[str]:
    """The packages a variant starts from, plus ``extra``."""
    wanted = {p.name for p in index.with_field("Essential", "yes", "Yes")}
    if variant in ("minbase", "standard"):
        wanted |= {p.name for p in index.with_field("Priority", "required")}
        wanted.add("apt")
    if variant == "standard":
        wanted |= {p.name for p in index.with_field("Priority", "important", "standard")}
    return sorted(wanted) + [p for p in extra if p not in wanted]


def resolve_cached(archive: DebianArchive, variant: str, extra: list[str],
                   ctx: BuildContext) -> list[Package]:
    """The packages of ``variant`` + ``extra`` in installation order.

    The result is cached per signed index (by its SHA-256), so a warm build skips parsing
    the 54 MB ``Packages`` file; a new index on the mirror means a new resolution.
    """
    from rvforge_debootstrap.index import Package
    from rvforge_debootstrap.resolve import resolve

    digests = archive.index_digests()
    index_key = digests[0] if len(digests) == 1 else digests  # Debian's key as before
    key = hashlib.sha256(json.dumps(
        [RESOLVER_VERSION, index_key, variant, sorted(set(extra))]).encode()
    ).hexdigest()[:32]
    cached = archive.dists_cache / f"resolved-{key}.json"
    if cached.exists():
        return [Package(**row) for row in json.loads(cached.read_text())]
    start = time.monotonic()
    index = archive.index()
    resolution = resolve(index, root_packages(index, variant, extra), arch=ARCH,
                         where=archive.where)
    ctx.log.info("resolved", packages=len(resolution.packages), variant=variant,
                 seconds=round(time.monotonic() - start, 2))
    write_atomic(cached, json.dumps([dataclasses.asdict(p) for p in resolution.packages]
                                    ).encode(), within=ctx.cache_dir)
    return resolution.packages


def build_unpacked(archive: DebianArchive, variant: str, extra: list[str], ctx: BuildContext
                   ) -> tuple[Tree, list[Unpacked]]:
    """Resolve, download and unpack; return the tree (dpkg database written, status
    ``unpacked``) and the packages in installation order."""
    from rvforge_debootstrap.deb import add_to_tree
    from rvforge_debootstrap.dpkgdb import Unpacked, write_database

    start = time.monotonic()
    packages = resolve_cached(archive, variant, extra, ctx)
    debs = archive.unpack_many(packages)
    tree = Tree()
    for path, target in MERGED_USR.items():
        tree.add_symlink(path, target)
    unpacked = []
    for pkg, deb in zip(packages, debs):
        add_to_tree(deb, tree)
        unpacked.append(Unpacked(pkg.name, pkg.architecture, pkg.multi_arch, deb.control,
                                 deb.listed()))
    write_database(tree, unpacked)
    ctx.log.info("unpacked", packages=len(unpacked), entries=len(tree),
                 seconds=round(time.monotonic() - start, 2))
    return tree, unpacked
