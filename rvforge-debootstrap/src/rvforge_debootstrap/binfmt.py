"""``--configure binfmt``: the first-boot hook run in a chroot on this host, its riscv64
programs run by qemu-user through a registered binfmt_misc handler.

Fast (maintainer scripts at qemu-user speed: about 20 s for minbase, where a VM takes about
60 s), but it needs root and a handler. The preconditions are checked before the tree
is touched, each failing with a one-line error that names the fix:

* root: the tree is extracted with its owners and device nodes, then mounted on and
  chrooted into (exit 2 otherwise);
* binfmt_misc mounted at ``/proc/sys/fs/binfmt_misc`` and enabled (exit 125 otherwise);
* an enabled handler whose magic and mask accept riscv64 ELF programs, whatever its name
  (``qemu-riscv64`` by convention; exit 125 otherwise). With the ``F`` (fix-binary) flag
  the kernel keeps its interpreter open, so it works in any chroot. Without it the kernel
  looks the interpreter up inside the chroot: it must then be statically linked, and a
  copy goes into the tree at the same path for the run and out again afterwards.

The run: the tree (with the hook of :mod:`rvforge_debootstrap.firstboot`) is packed by
rvforge's ``tar`` packer and extracted as root with numeric owners into a scratch
directory. ``unshare`` runs the hook there in new mount, PID, UTS, IPC and network
namespaces: ``/proc``, a read-only ``/sys``, a tmpfs ``/dev`` holding the host's ``null``,
``zero``, ``full``, ``random``, ``urandom`` and ``tty``, and tmpfs ``/tmp`` and ``/run``
(as rvforge's ``/init`` mounts them in the VM) exist in that mount namespace only, so
nothing leaks to the host and everything goes with the namespaces, also when rvforge is
killed (``setpriv --pdeathsig``). The hook gets a clean environment (``PATH``,
``LC_ALL=C.UTF-8``, ``DEBIAN_FRONTEND=noninteractive``, ``HOME=/root``) and a timeout; its
output goes to the log (``-v`` shows it) and its last lines into the error if it fails.
The directory is then read back as a tar (numeric owners, one file system) that replaces
the tree, as in ``--configure vm`` (:func:`~rvforge_debootstrap.firstboot.adopt_configured`),
and is removed, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rvforge import (
    BuildContext,
    EntryKind,
    HostFile,
    InputError,
    Step,
    ToolMissingError,
    Tree,
    UsageError,
    pack,
)

from rvforge_debootstrap.firstboot import HOOK, adopt_configured

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
TIMEOUT = 900.0
ELF_MACHINES = {"riscv64": (2, 0xF3)}
"""Architecture → (ELF class, ``e_machine``) of the programs a handler must accept."""
TOOLS = {"setpriv": "util-linux", "unshare": "util-linux", "mount": "mount",
         "chroot": "coreutils", "tar": "tar"}
ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
MOUNT_POINTS = ("proc", "sys", "dev", "tmp", "run")
READY = "rvforge: chroot ready, running the hook"
FIX = ("apt-get install qemu-user-static and register its handler with the F flag (see "
       "--configure binfmt in docs/debian.md), or use --configure vm (no root, no binfmt)")
# Runs in the new namespaces on the host's root; $1 is the tree, the rest the command.
SETUP = f"""set -u
root=$1; shift
fail() {{ echo "rvforge: cannot set up the chroot: $*" >&2; exit 1; }}
mount -t proc -o nosuid,nodev,noexec proc "$root/proc" || fail "mount /proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" || fail "mount /sys"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev" || fail "mount /dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node" || fail "bind /dev/$node"
done
ln -s /proc/self/fd "$root/dev/fd" && ln -s fd/0 "$root/dev/stdin" &&
    ln -s fd/1 "$root/dev/stdout" && ln -s fd/2 "$root/dev/stderr" &&
    mkdir -m 0755 "$root/dev/pts" && mkdir -m 1777 "$root/dev/shm" || fail "populate /dev"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp" || fail "mount /tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run" || fail "mount /run"
echo "{READY}"
exec chroot "$root" "$@"
"""


@dataclass(frozen=True)
class Handler:
    """One binfmt_misc entry (``/proc/sys/fs/binfmt_misc/NAME``) of the magic type."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes
    mask: bytes

    @property
    def fix_binary(self) -> bool:
        """The ``F`` flag: the kernel opened the interpreter at registration."""
        return "F" in self.flags

    def accepts(self, header: bytes) -> bool:
        """Whether a file starting with ``header`` is run by this handler."""
        window = header[self.offset:self.offset + len(self.magic)]
        return len(window) == len(self.magic) and all(
            (h & m) == (g & m) for h, g, m in zip(window, self.magic, self.mask))


def read_handler(entry: Path) -> Handler | None:
    """Parse a binfmt_misc entry file; ``None`` for an extension entry or an unreadable
    one."""
    try:
        lines = entry.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    if "magic" not in fields or not lines:
        return None
    try:
        magic = bytes.fromhex(fields["magic"])
        mask = bytes.fromhex(fields["mask"]) if "mask" in fields else b"\xff" * len(magic)
        offset = int(fields.get("offset", "0"))
    except ValueError:
        return None
    return Handler(entry.name, lines[0] == "enabled", fields.get("interpreter", ""),
                   fields.get("flags", ""), offset, magic, mask)


def elf_headers(arch: str) -> list[bytes]:
    """The first 20 bytes of an executable and of a PIE/shared object of ``arch``."""
    elf_class, machine = ELF_MACHINES[arch]
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    return [ident + struct.pack("<HH", e_type, machine) for e_type in (2, 3)]


def find_handlers(arch: str, directory: Path = BINFMT_DIR) -> list[Handler]:
    """The enabled handlers that run ``arch`` programs; an error naming the fix if none."""
    if not (directory / "register").exists():
        raise ToolMissingError(
            f"--configure binfmt: binfmt_misc is not mounted at {directory}: mount -t "
            f"binfmt_misc binfmt_misc {directory}, then {FIX}")
    if (directory / "status").read_text().strip() != "enabled":
        raise ToolMissingError(f"--configure binfmt: binfmt_misc is disabled: echo 1 > "
                               f"{directory / 'status'}, or use --configure vm")
    headers = elf_headers(arch)
    matching = [h for h in map(read_handler, sorted(directory.iterdir()))
                if h is not None and all(h.accepts(header) for header in headers)]
    enabled = [h for h in matching if h.enabled]
    if not enabled and matching:
        entry = directory / matching[0].name
        raise ToolMissingError(f"--configure binfmt: the binfmt_misc handler {entry} is "
                               f"disabled: echo 1 > {entry}, or use --configure vm")
    if not enabled:
        raise ToolMissingError(f"--configure binfmt: no binfmt_misc handler in {directory} "
                               f"runs {arch} programs: {FIX}")
    return enabled


def is_static(path: Path) -> bool:
    """Whether the ELF file ``path`` has no program interpreter (``PT_INTERP``)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
            return False
        order = "<" if head[5] == 1 else ">"
        if head[4] == 2:
            (phoff,) = struct.unpack_from(order + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        else:
            (phoff,) = struct.unpack_from(order + "I", head, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return len(table) == phentsize * phnum and not any(
        struct.unpack_from(order + "I", table, i * phentsize)[0] == 3 for i in range(phnum))


def interpreters_to_copy(handlers: list[Handler]) -> list[str]:
    """The interpreters the chroot needs a copy of (handlers without ``F``), each checked
    to be a statically linked file."""
    needed = []
    for handler in handlers:
        if handler.fix_binary or handler.interpreter in needed:
            continue
        where = f"--configure binfmt: the {handler.name} handler's interpreter " \
                f"{handler.interpreter}"
        if not os.path.isfile(handler.interpreter):
            raise ToolMissingError(f"{where} does not exist: {FIX}")
        if not is_static(Path(handler.interpreter)):
            raise ToolMissingError(
                f"{where} is dynamically linked and the handler lacks the F flag, so it "
                f"cannot run inside the chroot: register a static qemu (qemu-user-static) "
                f"with the F flag instead (docs/debian.md), or use --configure vm")
        needed.append(handler.interpreter)
    return needed


def preflight(arch: str, directory: Path = BINFMT_DIR) -> list[Handler]:
    """Check everything ``--configure binfmt`` needs; return the handlers it will use."""
    if arch not in ELF_MACHINES:
        raise UsageError(f"--configure binfmt supports {', '.join(ELF_MACHINES)}, not {arch}")
    if os.geteuid() != 0:
        raise UsageError("--configure binfmt needs root (it extracts the tree with its owners "
                         "and devices, mounts and chroots): run it as root, or use "
                         "--configure vm (no root needed)")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise ToolMissingError(f"--configure binfmt needs {tool}: apt-get install "
                                   f"{package}, or use --configure vm")
    handlers = find_handlers(arch, directory)
    interpreters_to_copy(handlers)
    return handlers


def configure_in_chroot(tree: Tree, handlers: list[Handler], packages: int,
                        ctx: BuildContext) -> None:
    """Run the first-boot hook of ``tree`` in a chroot and replace the tree's contents with
    the configured tree (``handlers`` from :func:`preflight`; ``packages`` to configure,
    for the progress bar)."""
    work = ctx.scratch("debootstrap", "binfmt")
    root = Path(tempfile.mkdtemp(prefix="root-", dir=work))
    configured = root.with_name(f"{root.name}.tar")
    try:
        try:
            start = time.monotonic()
            chroot_tree, copies = with_interpreters(tree, interpreters_to_copy(handlers))
            extract(chroot_tree, root, ctx)
            ctx.log.debug("extracted", directory=str(root),
                          seconds=round(time.monotonic() - start, 2))
            ctx.log.info("configuring in a chroot", packages=packages,
                         handlers=" ".join(f"{h.name}={h.interpreter}:{h.flags or '-'}"
                                           for h in handlers))
            seconds = run_hook(root, packages, ctx)
            for path in copies:  # deepest first: the interpreters, then directories made
                target = root / path.lstrip("/")
                if target.is_dir() and not target.is_symlink():
                    with contextlib.suppress(OSError):  # a package may have put files there
                        target.rmdir()
                else:
                    target.unlink(missing_ok=True)
            start = time.monotonic()
            _run(["tar", "--numeric-owner", "--one-file-system", "-C", str(root), "-cf",
                  str(configured), "."], "read back the configured tree")
        finally:
            remove_tree(root)
        adopt_configured(tree, configured, Path(tempfile.mkdtemp(prefix="contents-", dir=work)),
                         "binfmt", "see the log (-v)")
        ctx.log.debug("read back", seconds=round(time.monotonic() - start, 2))
    finally:
        configured.unlink(missing_ok=True)
    ctx.log.info("configured in a chroot", seconds=round(seconds, 1), entries=len(tree))


def with_interpreters(tree: Tree, interpreters: list[str]) -> tuple[Tree, list[str]]:
    """``tree`` (or a copy holding ``interpreters`` at their paths) and what the copy adds
    (files and directories, resolved in the tree, deepest first)."""
    if not interpreters:
        return tree, []
    copy = tree.copy()
    for interpreter in interpreters:
        if copy.lookup(interpreter) is not None:
            raise InputError(f"--configure binfmt: the tree has its own {interpreter}, where "
                             "the handler's interpreter must go: register the handler with "
                             "the F flag (docs/debian.md), or use --configure vm")
        copy.add_file(interpreter, HostFile.of(interpreter), mode=0o755)
    before = set(tree.paths())
    added = [p for p in copy.paths() if p not in before]
    return copy, sorted(added, key=lambda p: p.count("/"), reverse=True)


def extract(tree: Tree, root: Path, ctx: BuildContext) -> None:
    """Write ``tree`` to the empty directory ``root`` with owners, modes and devices."""
    if os.statvfs(root).f_flag & os.ST_NOEXEC:
        raise UsageError(f"--configure binfmt: the scratch directory {root.parent} is on a "
                         "noexec file system, where the chroot cannot run programs: point "
                         "TMPDIR at another one")
    for name in MOUNT_POINTS:
        entry = tree.get(f"/{name}")
        if entry is not None and entry.kind is not EntryKind.DIR:
            raise InputError(f"--configure binfmt: the tree's /{name} is not a directory")
    archive = root.with_name(f"{root.name}.unpacked.tar")
    try:
        pack(ctx.registry, tree, Step("tar", None), "tar", archive, ctx)
        _run(["tar", "--numeric-owner", "--same-owner", "-xpf", str(archive), "-C",
              str(root)], "extract the tree")
    finally:
        archive.unlink(missing_ok=True)
    for name in MOUNT_POINTS:
        (root / name).mkdir(mode=0o755, exist_ok=True)


def run_hook(root: Path, packages: int, ctx: BuildContext) -> float:
    """Run :data:`~rvforge_debootstrap.firstboot.HOOK` in the chroot ``root``; return the
    seconds it took."""
    argv = ["setpriv", "--pdeathsig", "KILL", "--",
            "unshare", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--uts", "--ipc", "--net",
            "sh", "-c", SETUP, "rvforge-chroot", str(root), HOOK]
    start = time.monotonic()
    tail: list[str] = []
    ready = False
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    with ctx.progress.task(f"configuring {packages} packages (chroot)", total=packages) as task:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=ENVIRONMENT)
        timer = threading.Timer(TIMEOUT, kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                if line == READY:
                    ready = True
                    continue
                ctx.log.debug("chroot", line=line)
                tail = (tail + [line])[-5:]
                if line.startswith("Setting up "):
                    task.advance()
            status = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - start
    summary = " | ".join(line for line in tail if line.strip())
    if timed_out.is_set():
        raise InputError(f"--configure binfmt: the hook did not finish in {TIMEOUT:.0f} s: "
                         f"{summary}")
    if not ready:
        raise ToolMissingError(f"--configure binfmt: could not set up the chroot: {summary}; "
                               "it needs root with mount namespaces (CAP_SYS_ADMIN): use "
                               "--configure vm")
    if status != 0:
        raise InputError(f"--configure binfmt: configuring failed in the chroot (exit status "
                         f"{status}): {summary}")
    return seconds


def remove_tree(root: Path) -> None:
    """Remove the chroot directory, never through a mount (the namespace's are gone with
    it; this guards against one that leaked to the host)."""
    prefix = f"{root}/"
    with open("/proc/self/mountinfo") as mountinfo:  # octal escapes: \040 is a space
        mounts = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4])
                  for line in mountinfo]
    leaked = [m for m in mounts if m == str(root) or m.startswith(prefix)]
    if leaked:
        raise ToolMissingError(f"--configure binfmt: {leaked[0]} is still mounted; unmount "
                               f"it (umount -R {root}) and remove {root}")
    shutil.rmtree(root, ignore_errors=True)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise InputError(f"--configure binfmt: could not {what}: {tail}")

