"""Alpine packages (``.apk``, v2), read in memory for the audit.

An ``.apk`` is gzip streams back to back — signature, control, data — whose contents
together are one tar archive (the first two carry no end-of-archive blocks, as
apk-tools writes them).
``gzip`` reads concatenated members as one stream, so the whole package is one
``tarfile`` stream here; the control members (``.SIGN.*``, ``.PKGINFO``, install
scripts: names starting with ``.`` at the top) are read past, the rest streamed into the
package tree. Signatures are not checked: the audit is about the CPU, and rvforge-alpine
verifies them when it installs a package.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from rvforge.errors import InputError
from rvforge.formats.package import MemberSink, Package, read_tar_members

__all__ = ["read_apk"]

CONTROL_PREFIX = (".SIGN.", ".PKGINFO", ".pre-install", ".post-install", ".pre-upgrade",
                  ".post-upgrade", ".pre-deinstall", ".post-deinstall", ".trigger", ".dummy")
"""Top-level names of apk's signature and control members; any other top-level name with a
dot (``.profile``) is data, and audited."""


def read_apk(path: Path) -> Package:
    """Read the ``.apk`` at ``path``: its data members into a package tree."""
    package = Package(path, "apk")
    try:
        stream = gzip.open(path, "rb")
        archive = tarfile.open(fileobj=stream, mode="r|")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InputError(f"{path}: truncated or corrupt .apk ({error})") from None
    with stream, archive:
        read_tar_members(archive, MemberSink(package), skip=CONTROL_PREFIX)
    return package
