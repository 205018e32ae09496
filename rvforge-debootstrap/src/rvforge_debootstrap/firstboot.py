"""The ``first-boot`` configuration: a hook script rvforge's ``/init`` runs on first boot.

Contract with the init (``rvforge.builtin.init_overlay``): after mounting ``/proc``,
``/sys`` and ``/dev``, ``/init`` runs every executable ``/etc/rvforge/first-boot.d/*`` in
name order, before the payload command. This module installs
``/etc/rvforge/first-boot.d/50-dpkg-configure``, which runs each unpacked package's
``preinst install`` in dependency order (what ``dpkg --install`` would have done before
unpacking; base-passwd's creates ``/etc/passwd``), then ``dpkg --configure -a``, then
deletes itself and its order file, so later boots of a disk image skip it.

``--configure vm`` and ``--configure binfmt`` run the same hook at build time and hand the
configured root filesystem back as a tar, which :func:`adopt_configured` checks and puts in
the tree's place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rvforge import InputError, Tree
from rvforge.formats.tar import read_tarball
from rvforge.protocol import FIRST_BOOT_DIR

from rvforge_debootstrap import deb822

HOOK_DIR = FIRST_BOOT_DIR
HOOK = f"{HOOK_DIR}/50-dpkg-configure"
ORDER_FILE = "/var/lib/rvforge/dpkg-preinst-order"

SCRIPT = """#!/bin/sh
# rvforge-debootstrap: finish installing Debian's packages on first boot (the second stage
# of debootstrap): each package's preinst in dependency order, then dpkg --configure -a.
set -e
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true LC_ALL=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
order={order}
if [ -f "$order" ]; then
    while read -r pkg; do
        script="/var/lib/dpkg/info/$pkg.preinst"
        if [ -x "$script" ]; then
            DPKG_MAINTSCRIPT_PACKAGE="${{pkg%%:*}}" DPKG_MAINTSCRIPT_NAME=preinst \\
                DPKG_MAINTSCRIPT_ARCH={arch} DPKG_ROOT= "$script" install
        fi
    done < "$order"
    rm -f "$order"
fi
dpkg --configure -a
rm -f "$0"
"""


def install_first_boot(tree: Tree, info_names: list[str], arch: str) -> None:
    """Add the hook and the preinst order (dpkg info names, dependencies first)."""
    tree.add_dir("/etc/rvforge")
    tree.add_dir(HOOK_DIR)
    tree.add_dir("/var/lib/rvforge")
    tree.add_file(ORDER_FILE, "".join(f"{n}\n" for n in info_names).encode())
    tree.add_file(HOOK, SCRIPT.format(order=ORDER_FILE, arch=arch).encode(), mode=0o755)


CONFIGURED_STATES = ("installed", "config-files", "not-installed")
"""dpkg package states ``dpkg --audit`` does not complain about."""


def not_configured(status: str) -> list[str]:
    """The packages of a dpkg ``status`` file in any other state (unpacked,
    half-configured, triggers pending...)."""
    found = []
    for paragraph in deb822.parse(status):
        name, words = paragraph.field("Package"), paragraph.field("Status").split()
        if name and (len(words) != 3 or words[2] not in CONFIGURED_STATES):
            found.append(name)
    return found


def adopt_configured(tree: Tree, tarball: Path, store: Path, mode: str, hint: str) -> None:
    """Replace the contents of ``tree`` with the configured root filesystem in the tar file
    ``tarball`` (deleted once read), after checking that dpkg configured every package.

    :param store: an empty directory for the file contents the tree then refers to (it must
        last as long as the tree); removed if this fails.
    :param mode: the ``--configure`` mode, for the error messages.
    :param hint: where to look when dpkg left packages unconfigured.
    """
    try:
        configured = read_tarball(tarball, store, label=f"the tree --configure {mode} made")
        left = not_configured(configured.read_text("/var/lib/dpkg/status"))
        if left:
            raise InputError(f"--configure {mode}: dpkg left {len(left)} package(s) "
                             f"unconfigured ({', '.join(left[:5])}); {hint}, or use "
                             "--configure first-boot")
    except BaseException:
        shutil.rmtree(store, ignore_errors=True)
        raise
    finally:
        tarball.unlink(missing_ok=True)
    for child in tree.children("/"):
        tree.remove(child.path)
    for entry in configured:  # archive order: a hardlink comes after its target
        if entry.path != "/":
            tree.add(entry)
