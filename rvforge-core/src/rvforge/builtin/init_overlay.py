"""The ``init`` overlay: rvforge's ``/init`` for initramfs boots.

The script is POSIX sh (busybox ash and dash both run it). Protocol, which launchers rely
on:

1. mounts ``proc``, ``sysfs`` and ``devtmpfs`` (and ``devpts``, ``/tmp``, ``/run``);
2. prints the ready marker :data:`READY_MARKER` on the console;
3. if the kernel command line carries ``rvforge.cmd=<base64 of a shell command>``, runs
   it with ``sh -c`` and prints ``RVFORGE-EXIT <status>``;
   with ``rvforge.shell=1`` instead, starts an interactive shell on the console;
4. powers off (``poweroff -f``, else the sysrq trigger).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rvforge.components import Overlay
from rvforge.context import BuildContext
from rvforge.hookspecs import hookimpl
from rvforge.tree import Tree

READY_MARKER = "RVFORGE-READY"
EXIT_MARKER = "RVFORGE-EXIT"

INIT_SCRIPT = r"""#!/bin/sh
# rvforge /init: mounts, ready marker, optional command, power off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mkdir -p /proc /sys /dev /tmp /run 2>/dev/null
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts 2>/dev/null
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null
mount -t tmpfs tmpfs /run 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "RVFORGE-READY"
cmd=""
shell=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        rvforge.cmd=*) cmd="${word#rvforge.cmd=}" ;;
        rvforge.shell=1) shell=1 ;;
    esac
done
if [ -n "$cmd" ]; then
    printf '%s' "$cmd" | base64 -d > /tmp/rvforge-cmd.sh 2>/dev/null
    sh /tmp/rvforge-cmd.sh
    echo "RVFORGE-EXIT $?"
elif [ -n "$shell" ]; then
    sh -i
fi
sync
poweroff -f 2>/dev/null
echo o > /proc/sysrq-trigger
sleep 5
"""


@dataclass
class InitOptions:
    """:param replace: write rvforge's ``/init`` even if the tree has one."""

    replace: bool = False


class InitOverlay(Overlay):
    name = "init"
    summary = "rvforge's /init: mounts, ready marker, runs the launcher's command, powers off"
    Options = InitOptions

    def apply(self, tree: Tree, options: InitOptions, ctx: BuildContext) -> None:
        if "/init" in tree and not options.replace:
            ctx.log.info("keeping the tree's own /init")
            return
        tree.add_file("/init", INIT_SCRIPT.encode(), mode=0o755)


@hookimpl
def rvforge_register_overlays(register: Callable[[type[Overlay]], None]) -> None:
    register(InitOverlay)
