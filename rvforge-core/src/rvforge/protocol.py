"""rvforge's boot protocol: what the ``init`` overlay's ``/init`` says and launchers read.

A launcher of any plugin can speak it: everything both sides spell is a constant here.

The init protocol (version 1), which rvforge's launchers rely on:

1. mount ``proc``, ``sysfs``, ``devtmpfs``, ``devpts`` and tmpfs on ``/tmp`` and ``/run``;
   the serial console becomes stdin, stdout and stderr;
2. run :data:`SETUP_PROGRAM` if the boot brought one (the launcher's module archive:
   it loads the kernel modules the boot needs and configures the network); mount each
   share named by a :data:`SHARE_ARGUMENT` word of the kernel command line
   (``rvforge.share=TAG:DIR[:ro]``: virtio-9p mount tag ``TAG`` on ``DIR``, created if
   missing); with :data:`NET_ARGUMENT`, write ``/etc/resolv.conf`` for QEMU's resolver;
3. run every executable ``/etc/rvforge/first-boot.d/*`` in name order, output on the
   console (rvforge-debootstrap's ``--configure first-boot`` hook finishes installing
   Debian's packages this way and then deletes itself; images rvforge boots are never
   written back, so such hooks run at every boot of an unconfigured image);
4. print the ready marker :data:`READY_MARKER` on the console;
5. with :data:`SHELL_ARGUMENT` on the kernel command line, start an interactive shell on
   the console instead (a session with the console's tty as its controlling terminal,
   sized by ``rvforge.rows=`` / ``rvforge.cols=``);
   else, if the VM has a virtio-serial port named ``rvforge.ctl`` (found through
   ``/sys/class/virtio-ports/*/name``), serve requests on it, one at a time:

   - the guest first writes ``RVFORGE-READY 1`` (protocol version) on the port;
   - ``RUN <token>`` followed by the lines of a shell script and a line holding only
     ``<token>``: the guest runs the script with ``sh`` in ``/``, stdin from
     ``/dev/null``, stdout on port ``rvforge.out``, stderr on port ``rvforge.err``, and
     then writes ``RVFORGE-EXIT <status>`` on the control port. A write on a virtio port
     returns only once the host has taken the bytes, so all output precedes the status;
   - ``POWEROFF`` (or the host closing the port) ends the loop;
6. power off (``poweroff -f``, else the sysrq trigger, which needs no userland).

The command's output never touches the serial console, so kernel messages (which go
there) cannot mix with it.

Saved and restored guests (snapshots) need nothing more from the guest, so the version
stays 1 and every image that speaks it can be restored:

- a launcher may save the whole VM once the hello has come (the loop of step 5 is then
  waiting for a request) and later restore it any number of times; a restored guest says
  no new hello, its loop simply reads the next request from the new host connection;
- a boot meant to be saved has no :data:`SHARE_ARGUMENT` words (a mounted 9p export cannot
  be saved, and which directory a share shows is chosen per run): the launcher mounts the
  shares, reseeds the kernel's random state and sets the clock with an ordinary ``RUN``
  request after each restore (and after the save of a cold boot), before the first command.
"""

from __future__ import annotations

from rvforge.numbers import is_decimal

__all__ = ["COLS_ARGUMENT", "CONTROL_PORT", "EXIT_MARKER", "FIRST_BOOT_DIR", "INIT_SCRIPT",
           "NET_ARGUMENT", "POWEROFF_REQUEST", "READY_MARKER", "ROWS_ARGUMENT", "RUN_REQUEST",
           "SETUP_PROGRAM", "SHARE_ARGUMENT", "SHELL_ARGUMENT", "STDERR_PORT", "STDOUT_PORT",
           "VERSION", "hello", "parse_exit", "run_request"]

VERSION = 1
"""The protocol version the guest announces with :data:`READY_MARKER` on the control port."""
READY_MARKER = "RVFORGE-READY"
"""Printed alone on the serial console once the init's mounts and hooks are done."""
EXIT_MARKER = "RVFORGE-EXIT"
"""``RVFORGE-EXIT <status>`` on the control port ends a ``RUN`` request."""
RUN_REQUEST = "RUN"
POWEROFF_REQUEST = "POWEROFF"
CONTROL_PORT = "rvforge.ctl"
STDOUT_PORT = "rvforge.out"
STDERR_PORT = "rvforge.err"
SHELL_ARGUMENT = "rvforge.shell=1"
"""Kernel command-line word: start an interactive shell on the console (see step 5)."""
FIRST_BOOT_DIR = "/etc/rvforge/first-boot.d"
"""Executables here run in name order before the ready marker (see step 3)."""
SETUP_PROGRAM = "/.rvforge/setup"
"""Run first when present (see step 2); launchers add it with the boot's modules."""
SHARE_ARGUMENT = "rvforge.share="
"""Kernel command-line word prefix: ``rvforge.share=TAG:DIR[:ro]`` mounts a 9p share."""
NET_ARGUMENT = "rvforge.net=1"
"""Kernel command-line word: the VM has QEMU's user-mode network (resolver 10.0.2.3)."""
ROWS_ARGUMENT = "rvforge.rows="
COLS_ARGUMENT = "rvforge.cols="
"""``rvforge.rows=N`` / ``rvforge.cols=N``: the interactive console's size."""


def hello() -> str:
    """The first line the guest writes on :data:`CONTROL_PORT`."""
    return f"{READY_MARKER} {VERSION}"


def run_request(token: str, script: str) -> bytes:
    """A ``RUN`` request: ``script`` framed by ``token`` (which must not be a line of it)."""
    body = script if script.endswith("\n") else script + "\n"
    return f"{RUN_REQUEST} {token}\n{body}{token}\n".encode()


def parse_exit(line: str) -> int | None:
    """The status of an ``RVFORGE-EXIT <status>`` line, else ``None``."""
    word, _, status = line.partition(" ")
    status = status.strip()
    return int(status) if word == EXIT_MARKER and is_decimal(status, max_digits=3) else None


_INIT_TEMPLATE = r"""#!/bin/sh
# rvforge /init, protocol {version}: mounts, ready marker, serves the launcher's requests on the
# virtio-serial port {ctl} (output on {out} / {err}), powers off.
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

rvforge_port() {{
    for p in /sys/class/virtio-ports/*; do
        [ -r "$p/name" ] || continue
        name=
        read -r name < "$p/name"
        if [ "$name" = "$1" ]; then
            echo "/dev/${{p##*/}}"
            return 0
        fi
    done
    return 1
}}

rvforge_serve() {{
    exec 3<>"$1"
    echo "{ready} {version}" >&3
    while IFS= read -r request <&3; do
        case "$request" in
        "RUN "*)
            token="${{request#RUN }}"
            : > /tmp/.rvforge-cmd
            while IFS= read -r line <&3; do
                [ "$line" = "$token" ] && break
                printf '%s\n' "$line" >> /tmp/.rvforge-cmd
            done
            (cd / && exec sh /tmp/.rvforge-cmd) </dev/null >"$2" 2>"$3"
            echo "{exit} $?" >&3
            ;;
        POWEROFF) break ;;
        esac
    done
    exec 3>&-
}}

rvforge_share() {{
    tag=${{1%%:*}}
    dir=${{1#*:}}
    opts=trans=virtio,version=9p2000.L,msize=262144
    case "$dir" in
    *:ro) dir=${{dir%:ro}}; opts=$opts,ro ;;
    esac
    mkdir -p "$dir" && mount -t 9p -o "$opts" "$tag" "$dir" \
        || echo "rvforge: cannot mount the shared directory $tag on $dir"
}}

rvforge_shell() {{
    tty=/dev/console
    active=
    read -r active < /sys/class/tty/console/active 2>/dev/null
    [ -n "$active" ] && [ -c "/dev/${{active##* }}" ] && tty=/dev/${{active##* }}
    [ -n "$rows" ] && stty rows "$rows" cols "$cols" < "$tty" 2>/dev/null
    if command -v setsid >/dev/null 2>&1; then
        setsid -c sh -i <"$tty" >"$tty" 2>&1
    else
        sh -i <"$tty" >"$tty" 2>&1
    fi
}}

read -r cmdline < /proc/cmdline
if [ -x {setup} ]; then
    {setup} || echo "rvforge: {setup} failed with status $?"
fi
shell= rows= cols=
set -f
for word in $cmdline; do
    case "$word" in
    {share_arg}*) rvforge_share "${{word#{share_arg}}}" ;;
    {net_arg})
        rm -f /etc/resolv.conf
        echo "nameserver 10.0.2.3" > /etc/resolv.conf \
            || echo "rvforge: cannot write /etc/resolv.conf"
        ;;
    {shell_arg}) shell=1 ;;
    {rows_arg}*) rows=${{word#{rows_arg}}} ;;
    {cols_arg}*) cols=${{word#{cols_arg}}} ;;
    esac
done
set +f
for hook in {hooks}/*; do
    [ -f "$hook" ] && [ -x "$hook" ] || continue
    echo "rvforge: first-boot hook $hook"
    "$hook" || echo "rvforge: first-boot hook $hook failed with status $?"
done
echo "{ready}"
if [ -n "$shell" ]; then
    rvforge_shell
elif ctl=$(rvforge_port {ctl}) && out=$(rvforge_port {out}) \
        && err=$(rvforge_port {err}); then
    rvforge_serve "$ctl" "$out" "$err"
fi
sync
poweroff -f 2>/dev/null
echo o > /proc/sysrq-trigger
sleep 5
"""

INIT_SCRIPT = _INIT_TEMPLATE.format(
    version=VERSION, ready=READY_MARKER, exit=EXIT_MARKER, ctl=CONTROL_PORT, out=STDOUT_PORT,
    err=STDERR_PORT, shell_arg=SHELL_ARGUMENT, hooks=FIRST_BOOT_DIR, setup=SETUP_PROGRAM,
    share_arg=SHARE_ARGUMENT, net_arg=NET_ARGUMENT, rows_arg=ROWS_ARGUMENT,
    cols_arg=COLS_ARGUMENT)
"""rvforge's ``/init`` (POSIX sh: busybox ash and dash both run it)."""
