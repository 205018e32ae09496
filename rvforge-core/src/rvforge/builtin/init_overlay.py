"""The ``init`` overlay: rvforge's ``/init`` for initramfs boots.

The script is POSIX sh (busybox ash and dash both run it) and uses only shell built-ins
plus ``mount``, ``mkdir``, ``sync``, ``sleep`` and ``poweroff`` if present: no ``base64``,
no ``stty``, no udev, so it works on a busybox image and on a Debian minbase alike (both
are tested in tests/test_boot.py). A disk image's root runs the same script, passed by the
boot initramfs's stub (``rvforge_qemu.stub``) as ``/bin/sh -c``.

The init protocol (version 1), which rvforge's launchers rely on:

1. mount ``proc``, ``sysfs``, ``devtmpfs``, ``devpts`` and tmpfs on ``/tmp`` and ``/run``;
   the serial console becomes stdin, stdout and stderr;
2. run every executable ``/etc/rvforge/first-boot.d/*`` in name order, output on the
   console (rvforge-debootstrap's ``--configure first-boot`` hook finishes installing
   Debian's packages this way and then deletes itself; images rvforge boots are never
   written back, so such hooks run at every boot of an unconfigured image);
3. print the ready marker :data:`READY_MARKER` on the console;
4. if the VM has a virtio-serial port named ``rvforge.ctl`` (found through
   ``/sys/class/virtio-ports/*/name``), serve requests on it, one at a time:

   - the guest first writes ``RVFORGE-READY 1`` (protocol version) on the port;
   - ``RUN <token>`` followed by the lines of a shell script and a line holding only
     ``<token>``: the guest runs the script with ``sh`` in ``/``, stdin from
     ``/dev/null``, stdout on port ``rvforge.out``, stderr on port ``rvforge.err``, and
     then writes ``RVFORGE-EXIT <status>`` on the control port. A write on a virtio port
     returns only once the host has taken the bytes, so all output precedes the status;
   - ``POWEROFF`` (or the host closing the port) ends the loop;

   without that port, ``rvforge.shell=1`` on the kernel command line starts an
   interactive shell on the console instead;
5. power off (``poweroff -f``, else the sysrq trigger, which needs no userland).

The command's output never touches the serial console, so kernel messages (which go
there) cannot mix with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rvforge.components import Overlay
from rvforge.context import BuildContext
from rvforge.hookspecs import hookimpl
from rvforge.tree import Tree

PROTOCOL_VERSION = 1
READY_MARKER = "RVFORGE-READY"
EXIT_MARKER = "RVFORGE-EXIT"
CONTROL_PORT = "rvforge.ctl"
STDOUT_PORT = "rvforge.out"
STDERR_PORT = "rvforge.err"

INIT_SCRIPT = r"""#!/bin/sh
# rvforge /init, protocol 1: mounts, ready marker, serves the launcher's requests on the
# virtio-serial port rvforge.ctl (output on rvforge.out / rvforge.err), powers off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
export PATH HOME
mkdir -p /proc /sys /dev /tmp /run 2>/dev/null
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts 2>/dev/null
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null
mount -t tmpfs tmpfs /run 2>/dev/null
exec </dev/console >/dev/console 2>&1

rvforge_port() {
    for p in /sys/class/virtio-ports/*; do
        [ -r "$p/name" ] || continue
        name=
        read -r name < "$p/name"
        if [ "$name" = "$1" ]; then
            echo "/dev/${p##*/}"
            return 0
        fi
    done
    return 1
}

rvforge_serve() {
    exec 3<>"$1"
    echo "RVFORGE-READY 1" >&3
    while IFS= read -r request <&3; do
        case "$request" in
        "RUN "*)
            token="${request#RUN }"
            : > /tmp/.rvforge-cmd
            while IFS= read -r line <&3; do
                [ "$line" = "$token" ] && break
                printf '%s\n' "$line" >> /tmp/.rvforge-cmd
            done
            (cd / && exec sh /tmp/.rvforge-cmd) </dev/null >"$2" 2>"$3"
            echo "RVFORGE-EXIT $?" >&3
            ;;
        POWEROFF) break ;;
        esac
    done
    exec 3>&-
}

for hook in /etc/rvforge/first-boot.d/*; do
    [ -f "$hook" ] && [ -x "$hook" ] || continue
    echo "rvforge: first-boot hook $hook"
    "$hook" || echo "rvforge: first-boot hook $hook failed with status $?"
done
echo "RVFORGE-READY"
if ctl=$(rvforge_port rvforge.ctl) && out=$(rvforge_port rvforge.out) \
        && err=$(rvforge_port rvforge.err); then
    rvforge_serve "$ctl" "$out" "$err"
else
    read -r cmdline < /proc/cmdline
    case " $cmdline " in
    *" rvforge.shell=1 "*) sh -i ;;
    esac
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
    summary = "rvforge's /init: mounts, ready marker, serves the launcher's commands, powers off"
    Options = InitOptions

    def apply(self, tree: Tree, options: InitOptions, ctx: BuildContext) -> None:
        if "/init" in tree and not options.replace:
            ctx.log.info("keeping the tree's own /init")
            return
        tree.add_file("/init", INIT_SCRIPT.encode(), mode=0o755)


@hookimpl
def rvforge_register_overlays(register: Callable[[type[Overlay]], None]) -> None:
    register(InitOverlay)
