"""``rvforge-bootstub``: the ``/init`` of the boot initramfs that mounts a disk root.

Debian's kernel has virtio-blk and ext4 as modules, and a disk image need not hold a
busybox, so the boot initramfs carries no shell: its ``/init`` is this small static
riscv64 ELF (about 1 KB), assembled here from the listing in :func:`assemble_stub`. It

1. mounts ``devtmpfs`` on ``/dev``;
2. loads each module file it was given, in order (``finit_module``; ``EEXIST`` is fine);
   with networking on, configures ``eth0`` as QEMU's user-mode network expects;
3. mounts the disk (``/dev/vda``, ext4) read-only on ``/lower``, retrying for up to 5 s
   while the device appears, a tmpfs on ``/upper``, and an overlay of the two on ``/root``:
   what the guest writes lives in its RAM, so a snapshot of the RAM holds all of it and
   the disk is never written (QEMU opens it read-only);
4. moves the overlay to ``/``, ``chroot``s into it and ``exec``s
   ``/bin/sh -c <script> sh`` (the launcher passes rvforge's init script), so the disk
   runs the init protocol whether or not it has rvforge's ``/init``.

A failing step prints ``rvforge-bootstub: <step> failed`` on the console and exits, which
the kernel turns into a panic the launcher reports with the console's last lines.

:func:`assemble_setup` is the same module loading and network setup as a program that
exits: an initramfs boot's ``/init`` runs it (see :mod:`rvforge_qemu.modules`).
:func:`assemble_fresh` is the program a restored guest runs first: it reads fresh host
entropy and the host's time on stdin (see :mod:`rvforge_qemu.fresh`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

BASE = 0x10000
"""Load address of the single PT_LOAD segment."""
EHDR, PHDR = 64, 56
AT_FDCWD = -100
MS_MOVE = 8192
MS_RDONLY = 1
EEXIST = 17
SYS = {"ioctl": 29, "mkdirat": 34, "mount": 40, "chdir": 49, "chroot": 51, "openat": 56,
       "close": 57, "read": 63, "write": 64, "exit": 93, "nanosleep": 101, "clock_settime": 112,
       "socket": 198, "execve": 221, "finit_module": 273, "timerfd_create": 85,
       "timerfd_settime": 86, "sched_setaffinity": 122}
ZERO, T0, T1, T2, S1, A0, A7, S2, S3, S4, S5 = 0, 5, 6, 7, 9, 10, 17, 18, 19, 20, 21
ARG_REGS = (10, 11, 12, 13, 14)

Value = int | str
"""An immediate, or a data symbol (``@N``: address of data offset N)."""


@dataclass
class Reg:
    """A register as a syscall argument."""

    number: int


@dataclass
class _Program:
    """A small assembler: RV64I instructions with labels, and a data area after the code.
    ``li`` always takes two words (``lui`` + ``addi``) so sizes are known in one pass."""

    code: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    fixups: list[tuple[int, str]] = field(default_factory=list)

    def emit(self, op: str, *args: object) -> None:
        self.code.append((op, args))

    def label(self, name: str) -> None:
        self.labels[name] = self._size()

    def blob(self, raw: bytes, align: int = 1) -> str:
        self.data += b"\0" * (-len(self.data) % align)
        symbol = f"@{len(self.data)}"
        self.data += raw
        return symbol

    def string(self, text: str) -> str:
        return self.blob(text.encode() + b"\0")

    def pointers(self, symbols: list[str]) -> str:
        """A NULL-terminated array of pointers to ``symbols``."""
        array = self.blob(b"\0" * 8 * (len(symbols) + 1), align=8)
        start = int(array[1:])
        self.fixups += [(start + 8 * i, s) for i, s in enumerate(symbols)]
        return array

    def syscall(self, name: str, *args: Value | Reg) -> None:
        for reg, value in zip(ARG_REGS, args):
            if isinstance(value, Reg):
                self.emit("addi", reg, value.number, 0)
            else:
                self.emit("li", reg, value)
        self.emit("li", A7, SYS[name])
        self.emit("ecall")

    def _size(self) -> int:
        return sum(8 if op == "li" else 4 for op, _ in self.code)

    def link(self) -> tuple[bytes, int]:
        """Machine code followed by the data; and the data's address."""
        data_addr = BASE + EHDR + PHDR + self._size()
        data_addr += -data_addr % 8
        out = bytearray()
        for op, args in self.code:
            pc = len(out)
            for word in self._encode(op, args, pc, data_addr):
                out += struct.pack("<I", word)
        out += b"\0" * (data_addr - BASE - EHDR - PHDR - len(out))
        data = bytearray(self.data)
        for offset, symbol in self.fixups:
            struct.pack_into("<Q", data, offset, self._value(symbol, data_addr))
        return bytes(out + data), data_addr

    @staticmethod
    def _value(value: object, data_addr: int) -> int:
        if isinstance(value, str):
            return data_addr + int(value[1:])
        return int(value)  # type: ignore[call-overload]

    def _encode(self, op: str, args: tuple[object, ...], pc: int, data_addr: int
                ) -> list[int]:
        if op == "li":
            rd, value = int(args[0]), self._value(args[1], data_addr)  # type: ignore[call-overload]
            upper = (value + 0x800) >> 12
            lower = value - (upper << 12)
            return [((upper & 0xFFFFF) << 12) | (rd << 7) | 0x37, _i_type(rd, rd, lower)]
        if op in ("add", "sub"):
            rd, rs1, rs2 = (int(a) for a in args)  # type: ignore[call-overload]
            return [(0x20 << 25 if op == "sub" else 0) | rs2 << 20 | rs1 << 15 | rd << 7 | 0x33]
        if op == "ecall":
            return [0x00000073]
        if op == "addi":
            return [_i_type(*(int(a) for a in args))]  # type: ignore[call-overload]
        if op in ("beq", "bne", "blt", "bge"):
            funct3 = {"beq": 0, "bne": 1, "blt": 4, "bge": 5}[op]
            rs1, rs2, target = args
            return [_b_type(funct3, int(rs1), int(rs2),  # type: ignore[call-overload]
                            self.labels[str(target)] - pc)]
        if op == "sd":  # sd rs2, imm(rs1)
            rs2, rs1, imm = (int(a) for a in args)  # type: ignore[call-overload]
            return [((imm >> 5) & 0x7F) << 25 | rs2 << 20 | rs1 << 15 | 3 << 12
                    | (imm & 0x1F) << 7 | 0x23]
        if op == "j":
            return [_j_type(self.labels[str(args[0])] - pc)]
        raise ValueError(f"unknown instruction {op}")


def _i_type(rd: int, rs1: int, imm: int) -> int:
    """``addi rd, rs1, imm``."""
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (rd << 7) | 0x13


def _b_type(funct3: int, rs1: int, rs2: int, offset: int) -> int:
    imm = offset & 0x1FFF
    return (((imm >> 12) & 1) << 31 | ((imm >> 5) & 0x3F) << 25 | rs2 << 20 | rs1 << 15
            | funct3 << 12 | ((imm >> 1) & 0xF) << 8 | ((imm >> 11) & 1) << 7 | 0x63)


def _j_type(offset: int) -> int:
    """``jal zero, offset``."""
    imm = offset & 0x1FFFFF
    return (((imm >> 20) & 1) << 31 | ((imm >> 1) & 0x3FF) << 21 | ((imm >> 11) & 1) << 20
            | ((imm >> 12) & 0xFF) << 12 | 0x6F)


GUEST_ADDRESS = (10, 0, 2, 15)
"""The guest's address on QEMU's user-mode network (``10.0.2.0/24``)."""
GATEWAY = (10, 0, 2, 2)
"""QEMU's user-mode gateway, which is also the host's loopback."""
NETMASK = (255, 255, 255, 0)
NET_DEVICE = "eth0"
"""virtio-net's interface name on a kernel without udev's renaming."""
AF_INET, SOCK_DGRAM = 2, 2
SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFNETMASK, SIOCADDRT = 0x8914, 0x8916, 0x891C, 0x890B
IFF_UP, IFF_MULTICAST = 0x1, 0x1000
RTF_UP, RTF_GATEWAY = 0x1, 0x2


def assemble_stub(modules: list[str], script: str, device: str = "/dev/vda",
                  fstype: str = "ext4", *, net: bool = False) -> bytes:
    """The stub ELF: load ``modules`` (paths in the boot initramfs; they must include
    ``overlay``), configure the network if ``net``, mount ``device`` as ``fstype``
    read-only under a RAM overlay on ``/root``, switch into it and run ``script`` with
    ``/bin/sh -c``."""
    p = _Program()
    p.syscall("mkdirat", AT_FDCWD, p.string("/dev"), 0o755)
    p.syscall("mount", p.string("devtmpfs"), p.string("/dev"), p.string("devtmpfs"), 0, 0)
    _load_modules(p, modules)
    if net:
        _configure_net(p)
    for directory in ("/lower", "/upper", "/root"):
        p.syscall("mkdirat", AT_FDCWD, p.string(directory), 0o755)
    _on_failure(p, f"mounting {device} ({fstype})")
    p.emit("li", S1, 100)
    p.label("retry")
    p.syscall("mount", p.string(device), p.string("/lower"), p.string(fstype), MS_RDONLY,
              p.string("noload"))
    p.emit("bge", A0, ZERO, "mounted")
    p.syscall("nanosleep", p.blob(struct.pack("<qq", 0, 50_000_000), align=8), 0)
    p.emit("addi", S1, S1, -1)
    p.emit("bne", S1, ZERO, "retry")
    p.emit("j", "fail")
    p.label("mounted")
    _on_failure(p, "mounting the overlay on the disk root")
    p.syscall("mount", p.string("tmpfs"), p.string("/upper"), p.string("tmpfs"), 0,
              p.string("mode=0755"))
    p.emit("blt", A0, ZERO, "fail")
    for directory in ("/upper/data", "/upper/work"):
        p.syscall("mkdirat", AT_FDCWD, p.string(directory), 0o755)
        p.emit("blt", A0, ZERO, "fail")
    p.syscall("mount", p.string("overlay"), p.string("/root"), p.string("overlay"), 0,
              p.string("lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work"))
    p.emit("blt", A0, ZERO, "fail")
    _on_failure(p, "switching to the disk root")
    for name, *args in (("chdir", p.string("/root")),
                        ("mount", p.string("."), p.string("/"), 0, MS_MOVE, 0),
                        ("chroot", p.string(".")), ("chdir", p.string("/"))):
        p.syscall(name, *args)
        p.emit("blt", A0, ZERO, "fail")
    _on_failure(p, "running /bin/sh on the disk root")
    sh = p.string("/bin/sh")
    argv = p.pointers([sh, p.string("-c"), p.string(script), p.string("sh")])
    envp = p.pointers([p.string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                "/sbin:/bin")])
    p.syscall("execve", sh, argv, envp)
    _fail_block(p, "rvforge-bootstub")
    return _elf(*p.link())


def assemble_setup(modules: list[str], *, net: bool) -> bytes:
    """The setup program an initramfs boot's ``/init`` runs first: load ``modules`` in
    order, configure the network if ``net``, exit 0 (1 after printing the failed step)."""
    p = _Program()
    _load_modules(p, modules)
    if net:
        _configure_net(p)
    p.syscall("exit", 0)
    _fail_block(p, "rvforge-setup")
    return _elf(*p.link())


RNDADDENTROPY = 0x40085203
"""``_IOW('R', 0x03, int[2])``: mix bytes into the pool and credit their entropy."""
RNDRESEEDCRNG = 0x5207
"""``_IO('R', 0x07)``: reseed the kernel's CRNG from the pool now."""
CLOCK_REALTIME = 0
O_WRONLY = 1


FRESH_INPUT = 80
"""What :func:`assemble_fresh`'s program reads on stdin: 64 bytes of host randomness, then
the host's time as ``struct timespec`` (two little-endian 64-bit integers)."""
SEED_BYTES = 64


def assemble_fresh() -> bytes:
    """A program making a restored guest a new machine: it reads :data:`FRESH_INPUT`
    bytes on stdin, adds the first 64 to the kernel's entropy pool with ``RNDADDENTROPY``
    (credited in full), reseeds the CRNG (``RNDRESEEDCRNG``: what the kernel hands out from
    now on differs from every sibling restored from the same snapshot), and sets
    ``CLOCK_REALTIME`` to the ``timespec`` that follows; exit 0 (1 after printing the
    failed step). Needs root in the guest."""
    p = _Program()
    # struct rand_pool_info {int entropy_count (bits); int buf_size; u32 buf[]}; the time after
    pool = p.blob(struct.pack("<ii", 8 * SEED_BYTES, SEED_BYTES)
                  + b"\0" * (FRESH_INPUT), align=8)
    data = f"@{int(pool[1:]) + 8}"
    now = f"@{int(pool[1:]) + 8 + SEED_BYTES}"
    _on_failure(p, "reading the seed and time on stdin")
    p.emit("li", S5, data)
    p.emit("li", S4, 0)
    p.label("read")
    p.emit("add", T1, S5, S4)
    p.emit("li", T2, FRESH_INPUT)
    p.emit("sub", T2, T2, S4)
    p.syscall("read", 0, Reg(T1), Reg(T2))
    p.emit("bge", ZERO, A0, "fail")  # an error, or stdin ended early
    p.emit("add", S4, S4, A0)
    p.emit("li", T0, FRESH_INPUT)
    p.emit("blt", S4, T0, "read")
    _on_failure(p, "opening /dev/urandom")
    p.syscall("openat", AT_FDCWD, p.string("/dev/urandom"), O_WRONLY)
    p.emit("blt", A0, ZERO, "fail")
    p.emit("addi", S1, A0, 0)
    _on_failure(p, "adding entropy (RNDADDENTROPY)")
    p.syscall("ioctl", Reg(S1), RNDADDENTROPY, pool)
    p.emit("blt", A0, ZERO, "fail")
    _on_failure(p, "reseeding the CRNG (RNDRESEEDCRNG)")
    p.syscall("ioctl", Reg(S1), RNDRESEEDCRNG, 0)
    p.emit("blt", A0, ZERO, "fail")
    p.syscall("close", Reg(S1))
    _on_failure(p, "setting the clock")
    p.syscall("clock_settime", CLOCK_REALTIME, now)
    p.emit("blt", A0, ZERO, "fail")
    _rearm_timer_events(p)
    p.syscall("exit", 0)
    _fail_block(p, "rvforge-fresh")
    return _elf(*p.link())


TIMER_CPUS = 64
"""CPUs :func:`_rearm_timer_events` reaches (one 64-bit affinity mask)."""
CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1


def _rearm_timer_events(p: _Program) -> None:
    """On each CPU, arm a timerfd that expired long ago (``CLOCK_MONOTONIC``, absolute
    1 ns): a timer earlier than the CPU's next programmed event makes the kernel program
    its timer device again. QEMU 7.2 to 10.0 does not re-arm the timer behind
    ``stimecmp``/``mtimecmp`` when it restores a CPU, and the kernel only reprograms for an
    earlier timer, so a restored CPU would otherwise wait for its lost event for ever (a
    ``sleep 1`` that never returns). The timerfds close when the program exits."""
    mask = p.blob(b"\0" * 8, align=8)
    spec = p.blob(struct.pack("<qqqq", 0, 0, 0, 1), align=8)  # struct itimerspec
    _on_failure(p, "re-arming the timer of each CPU")
    p.emit("li", S5, 1)
    p.emit("li", S4, 0)
    p.label("timers")
    p.emit("li", T0, mask)
    p.emit("sd", S5, T0, 0)
    p.syscall("sched_setaffinity", 0, 8, mask)
    p.emit("blt", A0, ZERO, "timers_next")  # no such CPU
    p.syscall("timerfd_create", CLOCK_MONOTONIC, 0)
    p.emit("blt", A0, ZERO, "fail")
    p.emit("addi", S1, A0, 0)
    p.syscall("timerfd_settime", Reg(S1), TFD_TIMER_ABSTIME, spec, 0)
    p.emit("blt", A0, ZERO, "fail")
    p.label("timers_next")
    p.emit("add", S5, S5, S5)
    p.emit("addi", S4, S4, 1)
    p.emit("li", T0, TIMER_CPUS)
    p.emit("blt", S4, T0, "timers")


def _on_failure(p: _Program, step: str) -> None:
    """From here on, ``fail`` reports ``step``."""
    message = f"{step} failed\n".encode()
    p.emit("li", S2, p.blob(message))
    p.emit("li", S3, len(message))


def _fail_block(p: _Program, program: str) -> None:
    """The ``fail`` label: print ``<program>: <step> failed`` and exit 1."""
    prefix = f"{program}: ".encode()
    p.label("fail")
    p.syscall("write", 1, p.blob(prefix), len(prefix))
    p.syscall("write", 1, Reg(S2), Reg(S3))
    p.syscall("exit", 1)


def _load_modules(p: _Program, modules: list[str]) -> None:
    """``finit_module`` each file in order; one already loaded (``EEXIST``) is fine."""
    for module in modules:
        _on_failure(p, f"loading {module}")
        done = f"loaded{len(p.labels)}"
        p.syscall("openat", AT_FDCWD, p.string(module), 0)
        p.emit("blt", A0, ZERO, "fail")
        p.emit("addi", S1, A0, 0)
        p.syscall("finit_module", Reg(S1), p.string(""), 0)
        p.emit("li", T0, -EEXIST)
        p.emit("beq", A0, T0, done)
        p.emit("blt", A0, ZERO, "fail")
        p.label(done)
        p.syscall("close", Reg(S1))


def _configure_net(p: _Program) -> None:
    """Bring ``lo`` up and give :data:`NET_DEVICE` QEMU's static user-mode address and
    default route, with the ``SIOC*`` ioctls every kernel has (no ``ip`` in the image
    needed)."""
    _on_failure(p, "opening a socket to configure the network")
    p.syscall("socket", AF_INET, SOCK_DGRAM, 0)
    p.emit("blt", A0, ZERO, "fail")
    p.emit("addi", S1, A0, 0)
    steps = (
        ("bringing up lo", SIOCSIFFLAGS, _ifreq("lo", struct.pack("<H", IFF_UP))),
        (f"setting the address of {NET_DEVICE}", SIOCSIFADDR,
         _ifreq(NET_DEVICE, _sockaddr_in(GUEST_ADDRESS))),
        (f"setting the netmask of {NET_DEVICE}", SIOCSIFNETMASK,
         _ifreq(NET_DEVICE, _sockaddr_in(NETMASK))),
        (f"bringing up {NET_DEVICE}", SIOCSIFFLAGS,
         _ifreq(NET_DEVICE, struct.pack("<H", IFF_UP | IFF_MULTICAST))),
        ("adding the default route", SIOCADDRT, _rtentry(GATEWAY)),
    )
    for step, request, argument in steps:
        _on_failure(p, step)
        p.syscall("ioctl", Reg(S1), request, p.blob(argument, align=8))
        p.emit("blt", A0, ZERO, "fail")
    p.syscall("close", Reg(S1))


def _sockaddr_in(address: tuple[int, int, int, int]) -> bytes:
    return struct.pack("<HH4B8x", AF_INET, 0, *address)


def _ifreq(name: str, union: bytes) -> bytes:
    """``struct ifreq`` (40 bytes on LP64): the name, then the request's union."""
    return name.encode().ljust(16, b"\0") + union.ljust(24, b"\0")


def _rtentry(gateway: tuple[int, int, int, int]) -> bytes:
    """``struct rtentry`` (120 bytes on LP64) for a default route via ``gateway``."""
    entry = bytearray(120)
    entry[8:24] = _sockaddr_in((0, 0, 0, 0))  # rt_dst
    entry[24:40] = _sockaddr_in(gateway)  # rt_gateway
    entry[40:56] = _sockaddr_in((0, 0, 0, 0))  # rt_genmask
    struct.pack_into("<H", entry, 56, RTF_UP | RTF_GATEWAY)  # rt_flags
    return bytes(entry)


def _elf(image: bytes, data_addr: int) -> bytes:
    """A static ELF64 RISC-V executable: one RWX PT_LOAD of the headers and ``image``."""
    size = EHDR + PHDR + len(image)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 243, 1, BASE + EHDR + PHDR, EHDR, 0,
                               0x4, EHDR, PHDR, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 7, 0, BASE, BASE, size, size, 0x1000)
    return ehdr + phdr + image
