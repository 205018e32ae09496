"""The ``first-boot`` configuration: a hook script rvforge's ``/init`` runs on first boot.

Contract with the init (``rvforge.builtin.init_overlay``): after mounting ``/proc``,
``/sys`` and ``/dev``, ``/init`` runs every executable ``/etc/rvforge/first-boot.d/*`` in
name order, before the payload command. This module installs
``/etc/rvforge/first-boot.d/50-dpkg-configure``, which runs each unpacked package's
``preinst install`` in dependency order (what ``dpkg --install`` would have done before
unpacking; base-passwd's creates ``/etc/passwd``), then ``dpkg --configure -a``, then
deletes itself and its order file, so later boots of a disk image skip it.

``--configure vm`` and ``--configure binfmt`` run the same hook at build time and hand the
result back as a tar: binfmt the whole configured root filesystem, which
:func:`adopt_configured` checks and puts in the tree's place; vm only what configuring
changed, with the list of every path left, which :func:`adopt_changes` checks and merges.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rvforge import EntryKind, InputError, Tree
from rvforge.formats.tar import read_tarball
from rvforge.protocol import FIRST_BOOT_DIR

from rvforge_debootstrap import deb822

HOOK_DIR = FIRST_BOOT_DIR
HOOK = f"{HOOK_DIR}/50-dpkg-configure"
ORDER_FILE = "/var/lib/rvforge/dpkg-preinst-order"
STATUS = "/var/lib/dpkg/status"

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


def check_configured(status: str, mode: str, hint: str) -> None:
    """Refuse a dpkg ``status`` that leaves packages unconfigured, naming them.

    :param mode: the ``--configure`` mode, for the error message.
    :param hint: where to look.
    """
    left = not_configured(status)
    if left:
        raise InputError(f"--configure {mode}: dpkg left {len(left)} package(s) "
                         f"unconfigured ({', '.join(left[:5])}); {hint}, or use "
                         "--configure first-boot")


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
        check_configured(configured.read_text(STATUS), mode, hint)
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


def adopt_changes(tree: Tree, tarball: Path, store: Path, *, listing: str,
                  kept: tuple[str, ...], mode: str, hint: str) -> None:
    """Merge into ``tree`` what configuring changed, from the tar file ``tarball`` (deleted
    once read), after checking that dpkg configured every package.

    The tar holds every entry created or changed (its ``ctime`` newer than the start of
    configuring), in ``find`` order, and the file ``listing``: the NUL-separated paths
    (``./etc/passwd``) of everything left afterwards. Tree entries not listed were deleted
    and are removed, except at and under ``kept`` (the mount points, whose own contents
    configuring could not see). The members are read into a copy of the tree, so their
    parents are the tree's own and nothing changes if the check fails.

    :param store: an empty directory for the contents of the changed files (it must last
        as long as the tree); removed if this fails.
    """
    label = f"the changes --configure {mode} made"
    merged = tree.copy()
    try:
        read_tarball(tarball, store, tree=merged, label=label)
        paths = merged.get(listing)
        if paths is None or paths.kind is not EntryKind.FILE:
            raise InputError(f"--configure {mode}: {label} lack the list of paths; {hint}")
        present = {"/" + p.decode("utf-8", "surrogateescape").removeprefix(".").lstrip("/")
                   for p in merged.read_bytes(listing).split(b"\0") if p}
        merged.remove(listing)
        check_configured(merged.read_text(STATUS), mode, hint)
    except BaseException:
        shutil.rmtree(store, ignore_errors=True)
        raise
    finally:
        tarball.unlink(missing_ok=True)
    for path in merged.paths():
        if path not in present and not any(path == k or path.startswith(f"{k}/")
                                           for k in kept):
            merged.remove(path)  # a directory goes with its subtree; later paths are gone
    for child in tree.children("/"):
        tree.remove(child.path)
    for entry in merged:  # insertion order: a hardlink comes after its target
        if entry.path != "/":
            tree.add(entry)
