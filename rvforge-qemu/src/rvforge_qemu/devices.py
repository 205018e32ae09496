"""What a boot adds to the VM for the development loop: host directories shared with the
guest (virtio-9p), user-mode networking with forwarded ports, the gdbstub.

Each is checked before anything starts (a bad value is exit 2 with one line) and turned
into QEMU arguments and kernel command-line words that rvforge's ``/init`` reads
(:mod:`rvforge.protocol`): ``rvforge.share=TAG:GUEST[:ro]`` mounts a share,
``rvforge.net=1`` writes the resolver configuration (the address and route are set by the
setup program that loads the modules, :mod:`rvforge_qemu.modules`).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from rvforge import UsageError
from rvforge.numbers import is_decimal
from rvforge.protocol import NET_ARGUMENT, SHARE_ARGUMENT
from rvforge.userfiles import expand_user

from rvforge_qemu.modules import wanted_modules

SYSTEM_PATHS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
    "/run", "/sbin", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64",
    "/usr/libexec", "/usr/sbin", "/usr/share", "/var", "/.rvforge",
})
"""Guest paths a share may not cover: the system, and what rvforge's ``/init`` mounts or
uses (``/tmp`` holds the command it runs)."""
VIRTUAL_TREES = ("/proc/", "/sys/", "/dev/", "/.rvforge/")
"""Nor may it go inside these (kernel file systems, rvforge's own files)."""
GUEST_PATH_RE = re.compile(r"[A-Za-z0-9._+@/-]+")
"""Characters a guest mount point may hold (it travels on the kernel command line)."""
GDB_DEFAULT_PORT = 1234


@dataclass(frozen=True)
class Share:
    """A host directory mounted in the guest: ``tag`` is its virtio-9p mount tag."""

    host: Path
    guest: str
    readonly: bool
    tag: str


@dataclass(frozen=True)
class Forward:
    """A TCP port on the host's 127.0.0.1 forwarded to a guest port."""

    host_port: int
    guest_port: int


@dataclass(frozen=True)
class Devices:
    """The shares, network and gdbstub of one boot (see the module docstring)."""

    shares: tuple[Share, ...] = ()
    net: bool = False
    forwards: tuple[Forward, ...] = ()
    gdb_port: int | None = None
    halted: bool = False

    @classmethod
    def parse(cls, shares: list[str] | tuple[str, ...], net: bool,
              forwards: list[str] | tuple[str, ...], gdb: int | None = None,
              halted: bool = False) -> Devices:
        """Check ``--share``/``--net``/``--forward``/``--gdb``/``--halted`` values."""
        parsed = tuple(parse_share(spec, index) for index, spec in enumerate(shares))
        seen: set[str] = set()
        for share in parsed:
            if share.guest in seen:
                raise UsageError(f"--share: two shares are mounted at {share.guest}; give "
                                 "each its own guest directory")
            seen.add(share.guest)
        ports = tuple(parse_forward(spec) for spec in forwards)
        if len({f.host_port for f in ports}) != len(ports):
            raise UsageError("--forward: a host port is forwarded twice; give each "
                             "forward its own host port")
        if gdb is not None and not 0 < gdb < 65536:
            raise UsageError(f"--gdb {gdb}: not a TCP port (1-65535)")
        if halted and gdb is None:
            raise UsageError("--halted waits for a debugger: give --gdb too")
        # mount parents before what is inside them
        ordered = tuple(sorted(parsed, key=lambda s: s.guest.count("/")))
        return cls(ordered, net or bool(ports), ports, gdb, halted)

    @property
    def modules(self) -> tuple[str, ...]:
        """The kernel modules the guest needs for these devices."""
        return wanted_modules(shares=bool(self.shares), net=self.net)

    def qemu_args(self) -> list[str]:
        args = []
        for share in self.shares:
            fsdev = f"rvforge-fs{share.tag.removeprefix('rvshare')}"
            args += ["-fsdev", (f"local,id={fsdev},path={_qemu_value(str(share.host))},"
                                "security_model=none" + (",readonly=on" * share.readonly)),
                     "-device", f"virtio-9p-pci,fsdev={fsdev},mount_tag={share.tag}"]
        if self.net:
            netdev = "user,id=rvforge-net" + "".join(
                f",hostfwd=tcp:127.0.0.1:{f.host_port}-:{f.guest_port}" for f in self.forwards)
            args += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=rvforge-net,romfile="]
        if self.gdb_port is not None:
            args += ["-gdb", f"tcp:127.0.0.1:{self.gdb_port}"]
        if self.halted:
            args.append("-S")
        return args

    def kernel_words(self) -> list[str]:
        words = [f"{SHARE_ARGUMENT}{s.tag}:{s.guest}{':ro' * s.readonly}" for s in self.shares]
        return [*words, NET_ARGUMENT] if self.net else words


def parse_share(spec: str, index: int = 0) -> Share:
    """``HOST:GUEST[:ro]`` (or ``:rw``) as a :class:`Share` tagged ``rvshare<index>``."""
    body, readonly = spec, False
    for suffix, ro in ((":ro", True), (":rw", False)):
        if spec.endswith(suffix):
            body, readonly = spec[: -len(suffix)], ro
            break
    host_text, sep, guest = body.rpartition(":")
    if not sep or not host_text or not guest:
        raise UsageError(f"--share {spec}: expected HOST:GUEST[:ro], e.g. "
                         "--share ./build:/mnt/build")
    host = expand_user(host_text, f"--share {spec}:")
    if not host.is_dir():
        raise UsageError(f"--share {spec}: the host directory {host} does not exist; "
                         "create it or fix the path")
    if not guest.startswith("/"):
        raise UsageError(f"--share {spec}: the guest directory {guest!r} must be an "
                         "absolute path, e.g. /mnt/share")
    guest = posixpath.normpath(guest)
    if not GUEST_PATH_RE.fullmatch(guest):
        raise UsageError(f"--share {spec}: the guest directory {guest!r} may hold only "
                         "letters, digits and . _ + @ / -")
    if guest in SYSTEM_PATHS or guest.startswith(VIRTUAL_TREES):
        raise UsageError(f"--share {spec}: {guest} is a system directory of the guest; "
                         "mount the share elsewhere, e.g. /mnt/share")
    return Share(host.resolve(), guest, readonly, f"rvshare{index}")


def parse_forward(spec: str) -> Forward:
    """``HOSTPORT:GUESTPORT`` as a :class:`Forward`."""
    host, sep, guest = spec.partition(":")
    if not (sep and is_decimal(host, max_digits=5) and is_decimal(guest, max_digits=5)
            and 0 < int(host) < 65536 and 0 < int(guest) < 65536):
        raise UsageError(f"--forward {spec}: expected HOSTPORT:GUESTPORT (TCP ports "
                         "1-65535), e.g. --forward 8080:80")
    return Forward(int(host), int(guest))


def _qemu_value(text: str) -> str:
    """``text`` inside a QEMU ``key=value,...`` option (a comma is written twice)."""
    return text.replace(",", ",,")
