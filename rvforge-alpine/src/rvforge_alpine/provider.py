"""The ``alpine`` provider: Alpine's riscv64 minirootfs, verified and cached, plus packages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rvforge import BuildContext, Provider, Tree, UsageError

from rvforge_alpine.releases import ReleaseRequest

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass
class AlpineOptions:
    """:param release: ``latest-stable`` (default), ``edge``, a branch (``3.21`` or
        ``v3.21``) or a version (``3.21.2``); 3.20 or later.
    :param mirror: mirror URL or local path (default ``$RVFORGE_ALPINE_MIRROR``, else
        Alpine's CDN).
    :param source: a minirootfs tarball you already have, instead of downloading one.
    :param sha256: the expected SHA-256 of ``--source``.
    :param package: apk packages to install (repeatable): names or atoms
        (``so:libz.so.1``, ``musl>=1.2``).
    :param keyring: OpenPGP keys to check the release signature with, instead of
        Alpine's release key shipped with rvforge-alpine.
    :param verify_signature: check the release's ``.asc`` (``--no-verify-signature``
        skips it; checksums are always checked).
    :param scripts: packages' install scripts: ``first-boot`` (run once by rvforge's
        ``/init``) or ``skip`` (only reported).
    :param jobs: parallel package downloads.
    """

    release: str = "latest-stable"
    mirror: str | None = None
    source: Path | None = None
    sha256: str | None = None
    package: list[str] = field(default_factory=list)
    keyring: Path | None = None
    verify_signature: bool = True
    scripts: str = "first-boot"
    jobs: int = 4

    def __post_init__(self) -> None:
        ReleaseRequest.parse(self.release)
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise UsageError(f"--sha256 {self.sha256!r}: expected 64 hex digits")
        if self.sha256 is not None and self.source is None:
            raise UsageError("--sha256 checks a --source tarball; downloads are always "
                             "checked against the mirror's digests")
        from rvforge_alpine import install_scripts  # apk reading: only once the provider is used

        if self.scripts not in install_scripts.POLICIES:
            raise UsageError(f"--scripts {self.scripts!r}: expected one of "
                             f"{', '.join(install_scripts.POLICIES)}")
        if self.jobs < 1:
            raise UsageError(f"--jobs {self.jobs}: expected at least 1")


class AlpineProvider(Provider[AlpineOptions]):
    name = "alpine"
    summary = ("Alpine Linux riscv64 minirootfs (verified, cached) with optional apk "
               "packages, no root needed")
    Options = AlpineOptions
    cache_entries = {"alpine/*/releases/*/*": "downloads", "alpine/packages/*": "downloads",
                     "alpine/*/main/*/*": "indexes", "alpine/*/community/*/*": "indexes"}

    def provide(self, options: AlpineOptions, ctx: BuildContext) -> Tree:
        # the download, signature and apk modules: imported when a build uses this provider,
        # not by every command that loads the plugins
        from rvforge.formats.tar import read_tarball
        from rvforge.userfiles import expand_user

        from rvforge_alpine import minirootfs
        from rvforge_alpine.installer import InstallRequest, install
        from rvforge_alpine.minirootfs import SignaturePolicy
        from rvforge_alpine.mirror import mirror_url

        request = ReleaseRequest.parse(options.release)
        mirror = mirror_url(options.mirror)
        policy = SignaturePolicy(options.verify_signature, options.keyring)
        if options.source is not None:
            tarball = expand_user(options.source, "--source")
            minirootfs.check_source(tarball, options.sha256, policy, ctx)
            label = str(tarball)
        else:
            resolved = minirootfs.resolve(request, mirror, ctx)
            tarball = minirootfs.obtain(resolved, mirror, policy, ctx)
            request = ReleaseRequest(resolved.release.branch, resolved.release.version)
            label = resolved.release.file
        ctx.log.info("reading minirootfs", tarball=str(tarball))
        tree = read_tarball(tarball, ctx.scratch("alpine", "rootfs"), label=label)
        if options.package:
            branch = self._package_branch(request, options, tree)
            install(tree, InstallRequest(options.package, mirror, branch, options.jobs,
                                         options.scripts), ctx)
        return tree

    @staticmethod
    def _package_branch(request: ReleaseRequest, options: AlpineOptions, tree: Tree) -> str:
        """The branch whose repositories match the tree: the resolved release's, or for
        ``--source`` the tree's ``/etc/alpine-release`` (``3.20.3`` → ``v3.20``) unless
        ``--release`` names one."""
        if options.source is None or options.release != "latest-stable":
            return request.branch
        if tree.is_file("/etc/alpine-release"):
            version = tree.read_text("/etc/alpine-release").strip()
            match = re.match(r"^([0-9]+)\.([0-9]+)\.", version)
            if match:
                return f"v{match[1]}.{match[2]}"
            if re.match(r"^[0-9]{8}$", version):
                return "edge"
        raise UsageError("--package with --source needs the tree's /etc/alpine-release or "
                         "--release BRANCH to pick the package repositories")

