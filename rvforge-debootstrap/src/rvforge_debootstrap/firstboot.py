"""The ``first-boot`` configuration: a hook script rvforge's ``/init`` runs on first boot.

Contract with the init (``rvforge.builtin.init_overlay``): after mounting ``/proc``,
``/sys`` and ``/dev``, ``/init`` runs every executable ``/etc/rvforge/first-boot.d/*`` in
name order, before the payload command. This module installs
``/etc/rvforge/first-boot.d/50-dpkg-configure``, which runs each unpacked package's
``preinst install`` in dependency order (what ``dpkg --install`` would have done before
unpacking; base-passwd's creates ``/etc/passwd``), then ``dpkg --configure -a``, then
deletes itself and its order file, so later boots of a disk image skip it.
"""

from __future__ import annotations

from rvforge import Tree

HOOK_DIR = "/etc/rvforge/first-boot.d"
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
