"""rvforge's boot protocol: what the ``init`` overlay's ``/init`` says and launchers read.

A launcher of any plugin can speak it: everything both sides spell is a constant here.

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

__all__ = ["CONTROL_PORT", "EXIT_MARKER", "FIRST_BOOT_DIR", "INIT_SCRIPT", "POWEROFF_REQUEST",
           "READY_MARKER", "RUN_REQUEST", "SHELL_ARGUMENT", "STDERR_PORT", "STDOUT_PORT", "VERSION",
           "hello", "parse_exit", "run_request"]

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
"""Kernel command-line word: no control port, so start an interactive shell on the console."""
FIRST_BOOT_DIR = "/etc/rvforge/first-boot.d"
"""Executables here run in name order before the ready marker (see step 2)."""


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
    return int(status) if word == EXIT_MARKER and status.strip().isdigit() else None


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

for hook in {hooks}/*; do
    [ -f "$hook" ] && [ -x "$hook" ] || continue
    echo "rvforge: first-boot hook $hook"
    "$hook" || echo "rvforge: first-boot hook $hook failed with status $?"
done
echo "{ready}"
if ctl=$(rvforge_port {ctl}) && out=$(rvforge_port {out}) \
        && err=$(rvforge_port {err}); then
    rvforge_serve "$ctl" "$out" "$err"
else
    read -r cmdline < /proc/cmdline
    case " $cmdline " in
    *" {shell_arg} "*) sh -i ;;
    esac
fi
sync
poweroff -f 2>/dev/null
echo o > /proc/sysrq-trigger
sleep 5
"""

INIT_SCRIPT = _INIT_TEMPLATE.format(
    version=VERSION, ready=READY_MARKER, exit=EXIT_MARKER, ctl=CONTROL_PORT, out=STDOUT_PORT,
    err=STDERR_PORT, shell_arg=SHELL_ARGUMENT, hooks=FIRST_BOOT_DIR)
"""rvforge's ``/init`` (POSIX sh: busybox ash and dash both run it)."""
